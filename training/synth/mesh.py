"""The mesh that gets rendered: the hand model of one side plus a forearm stub, one closed surface.

The hand mesh ends in an open cut at the wrist. A forearm (rings extruded from that cut, tapering
out, bending at the wrist, optionally ending in a sleeve) closes it, so pictures show an arm
entering the frame as real ones do. The forearm moves rigidly with the wrist joint; it is only
scenery: ground truth (keypoints, vertices, mask) is the hand model's alone.

Vertex order: the model's V hand vertices, then ``ARM_RINGS`` rings of L vertices (L = the cut's
length), then the cap's centre. Forearm triangles list a forearm vertex last, so a "flat" per-
triangle attribute taken from the last vertex tells hand from forearm (see render.py).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from core.hand_model import HandModel

SKIN_RING_STEPS = np.array([0.06, 0.15, 0.3, 0.5, 0.75, 1.0])  # skin rings at these fractions of the bare length
CLOTH_RING_STEPS = np.array([0.0, 0.5, 1.0])                   # sleeve rings from the cuff to the end
ARM_RINGS = len(SKIN_RING_STEPS) + len(CLOTH_RING_STEPS)
BEND_LENGTH = 0.04   # metres over which the wrist bend is phased in
TILT_LENGTH = 0.04   # metres over which the slanted wrist cut becomes a straight cross-section
FLARE_LENGTH = 0.15  # metres over which the forearm widens to its full flare
HAND_ID, FOREARM_ID = 1.0, 0.5  # per-vertex ids for the renderer (see render.py)


@dataclasses.dataclass
class Forearm:
    """Forearm geometry; lengths in metres, angles in radians (in the hand's rest frame)."""

    length: float          # from the wrist cut to the end cap
    bare: float            # skin length before the sleeve (= length: no sleeve)
    flare: float           # relative widening of the cross-section over FLARE_LENGTH
    sleeve_scale: float    # sleeve cross-section relative to the arm under it (1 = no sleeve)
    flexion: float         # wrist bend about the rest frame's x axis (palm <-> back)
    deviation: float       # wrist bend about the palm normal (thumb <-> little finger side)


def boundary_loop(faces: np.ndarray) -> np.ndarray:
    """(L,) vertex ids of the mesh's single boundary loop, ordered as its edges run in ``faces``."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    directed = {(int(a), int(b)) for a, b in edges}
    following = {a: b for a, b in directed if (b, a) not in directed}
    start = next(iter(following))
    loop = [start]
    while following[loop[-1]] != start:
        loop.append(following[loop[-1]])
    if len(loop) != len(following):
        raise ValueError(f"the hand mesh has {len(following)} boundary edges, not one loop")
    return np.array(loop, np.int64)


def rotation_x(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rotation_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


class HandMesh:
    """Topology and per-vertex maps of the render mesh of one side.

    faces        (F', 3) int32   hand triangles, then forearm triangles
    ids          (N,)   float32  HAND_ID for hand vertices, FOREARM_ID for the forearm's
    palm         (V,)   float32  0 = back of the hand .. 1 = palm side (for the lighter palm skin)
    nail         (V,)   float32  0 .. 1 near the nail beds
    texture_pos  (V, 3) float32  rest positions (metres) that fix skin-blotch noise to the surface
    """

    def __init__(self, model: HandModel):
        self.model = model
        self.side = model.side
        self.num_hand = model.num_vertices
        self.loop = boundary_loop(model.faces)
        L = len(self.loop)
        self.num_vertices = self.num_hand + ARM_RINGS * L + 1
        rings = self.num_hand + np.arange(ARM_RINGS * L).reshape(ARM_RINGS, L)
        rings = np.concatenate([self.loop[None], rings])                  # ring 0 = the hand's own cut
        a, b = rings[:, :], np.roll(rings, -1, axis=1)                    # edge a -> b runs like the hand's
        quads = [np.stack([b[k], a[k], a[k + 1]], 1) for k in range(ARM_RINGS)] + \
                [np.stack([b[k], a[k + 1], b[k + 1]], 1) for k in range(ARM_RINGS)]
        cap = np.stack([b[-1], a[-1], np.full(L, self.num_vertices - 1)], 1)
        self.faces = np.concatenate([model.faces] + quads + [cap]).astype(np.int32)
        self.cloth = np.zeros(self.num_vertices - self.num_hand, bool)    # forearm vertices on the sleeve
        self.cloth[len(SKIN_RING_STEPS) * L:] = True
        self.ids = np.full(self.num_vertices, FOREARM_ID, np.float32)      # the renderer's triangle ids
        self.ids[:self.num_hand] = HAND_ID

        normals = vertex_normals(model.v_template, model.faces)
        self.palm = np.clip((normals[:, 2] + 0.2) / 0.8, 0, 1).astype(np.float32)   # palm faces +z at rest
        tips = model.v_template[model.tip_vertex_ids]                                  # (5, 3)
        to_tip = np.linalg.norm(model.v_template[:, None] - tips[None], axis=2).min(1)
        self.nail = (np.clip((0.012 - to_tip) / 0.004, 0, 1) * np.clip(-normals[:, 2] / 0.5, 0, 1)).astype(np.float32)
        self.texture_pos = model.v_template.copy()

    def forearm(self, hand_vertices: np.ndarray, rest_vertices: np.ndarray, rest_wrist: np.ndarray,
                root_rotation: np.ndarray, wrist: np.ndarray, arm: Forearm) -> tuple[np.ndarray, np.ndarray]:
        """Forearm vertices of one posed hand.

        hand_vertices (V, 3) posed, camera space; rest_vertices (V, 3) and rest_wrist (3,) of this
        shape at zero pose; root_rotation (3, 3) the global orientation; wrist (3,) the posed wrist
        joint. Returns ((ARM_RINGS * L + 1, 3) camera-space vertices, the same points in the rest
        frame for texturing).
        """
        cut = rest_vertices[self.loop] - rest_wrist                        # (L, 3) relative to the wrist joint
        centre = cut.mean(0)
        skin = arm.bare * SKIN_RING_STEPS
        cloth = arm.bare + (arm.length - arm.bare) * CLOTH_RING_STEPS
        distance = np.concatenate([skin, cloth])                           # (R,) along -y from the cut
        scale = 1.0 + arm.flare * np.minimum(distance / FLARE_LENGTH, 1.0)
        scale[len(skin):] *= arm.sleeve_scale
        tilt = np.maximum(0.0, 1.0 - distance / TILT_LENGTH)
        rings = np.empty((len(distance), len(cut), 3))
        rings[..., 0] = centre[0] + scale[:, None] * (cut[:, 0] - centre[0])
        rings[..., 2] = centre[2] + scale[:, None] * (cut[:, 2] - centre[2])
        rings[..., 1] = centre[1] + tilt[:, None] * (cut[:, 1] - centre[1]) - distance[:, None]
        end = np.array([centre[0], centre[1] - arm.length, centre[2]])
        rest = np.concatenate([rings.reshape(-1, 3), end[None]])           # (R * L + 1, 3)
        phase = np.minimum(np.concatenate([np.repeat(distance, len(cut)), [arm.length]]) / BEND_LENGTH, 1.0)
        bent = np.empty_like(rest)
        for p in np.unique(phase):                                         # few distinct phases: one per ring
            sel = phase == p
            bend = rotation_x(p * arm.flexion) @ rotation_z(p * arm.deviation)
            bent[sel] = rest[sel] @ bend.T
        posed = bent @ root_rotation.T + wrist
        return posed.astype(np.float32), (rest + rest_wrist).astype(np.float32)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(N, 3) vertices, (F, 3) faces -> (N, 3) float32 area-weighted unit vertex normals."""
    v = vertices.T.astype(np.float64)                                       # (3, N): contiguous rows
    a, b, c = v[:, faces[:, 0]], v[:, faces[:, 1]], v[:, faces[:, 2]]
    e, f = b - a, c - a
    face_normals = np.stack([e[1] * f[2] - e[2] * f[1], e[2] * f[0] - e[0] * f[2], e[0] * f[1] - e[1] * f[0]])
    corners = faces.T.ravel()                                               # each face's 3 vertices
    normals = np.stack([np.bincount(corners, weights=np.tile(n, 3), minlength=len(vertices)) for n in face_normals], 1)
    return (normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)).astype(np.float32)
