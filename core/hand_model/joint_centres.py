"""Joint centres of a sampled hand from published proportions (build time, numpy only).

The MPFB rig's joint cubes are skin landmarks, not joint centres: its MCP "joints" sit at the
finger webs and its wrist at the mesh's cut, and its PIP/DIP cubes lie on the back of the finger.
For every sampled hand (vertices (N, V, 3) and rig joints (N, 16, 3), MANO order, metres) this
module places the joint centres the way anatomy does (``anatomy.py`` has the numbers and sources):

- PIP, DIP and the thumb's IP: at the rig's interphalangeal creases along the finger (the creases
  overlie those joints), moved onto the finger's centre line (the centroid of the mesh's
  cross-section there).
- One hand scale per sample: the sample's own middle phalanges (PIP -> DIP, four fingers) over
  the published ones; every other length is a published bone length times this scale.
- MCP: one proximal-phalanx length back from the PIP centre, along the proximal phalanx's axis
  (from the centroid of that phalanx's vertices through the PIP centre): inside the knuckle.
- Thumb: MCP one proximal phalanx back from the IP; CMC further back along the rig's first
  metacarpal (CMC -> MCP cube), by that rig length times one population-wide factor.
- Wrist: from the middle MCP toward the centre of the forearm's cut, by that distance times one
  population-wide factor: the head of the capitate.
  The two factors make the population's mean hand's first metacarpal and carpal offset + third
  metacarpal the published lengths (times the mean scale); per sample these two follow the palm's
  own mesh (a hand with long fingers need not have a long palm) so that the joint regressor, which
  sees the vertices around each joint, can follow them.
"""

from __future__ import annotations

import numpy as np

from . import anatomy

FINGER_JOINTS = {"index": (1, 2, 3), "middle": (4, 5, 6), "ring": (10, 11, 12), "pinky": (7, 8, 9)}
THUMB_JOINTS = (13, 14, 15)
TIP_INDEX = {"thumb": 0, "index": 1, "middle": 2, "ring": 3, "pinky": 4}
SLAB_M = 2.0e-3     # half thickness of the slab that picks a cross-section's vertices


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


class CrossSections:
    """Vertex rings of the template's fingers, chosen once and reused for every sample.

    ``add(name, point, axis, candidates)``: the candidate vertices (ids) within SLAB_M of the plane
    through ``point`` (3,) with normal ``axis`` (3,) on the template. ``centroid(verts, name)``:
    (N, 3) centroids of that ring on each sample (N, V, 3).
    """

    def __init__(self, template: np.ndarray):
        self.template, self.rings = template, {}

    def add(self, name: str, point: np.ndarray, axis: np.ndarray, candidates: np.ndarray) -> None:
        distance = np.abs((self.template[candidates] - point) @ unit(axis))
        for slab in (SLAB_M, 2 * SLAB_M, 4 * SLAB_M):
            ring = candidates[distance < slab]
            if len(ring) >= 6:
                break
        self.rings[name] = ring

    def centroid(self, verts: np.ndarray, name: str) -> np.ndarray:
        return verts[:, self.rings[name]].mean(1)


def on_axis(point: np.ndarray, centroid: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """(N, 3) ``point`` moved across ``axis`` (N, 3) onto the cross-section ``centroid`` (N, 3),
    keeping its position along the axis."""
    a = unit(axis)
    offset = centroid - point
    return point + offset - (offset * a).sum(-1, keepdims=True) * a


def finger_vertices(mpfb_ray: np.ndarray, finger: str) -> np.ndarray:
    """Ids of the vertices that MPFB weights mostly to ``finger``'s phalanges; ``mpfb_ray`` (V, 6)
    is the per-ray membership (wrist, thumb, index, middle, ring, pinky)."""
    column = 1 + anatomy.FINGERS.index(finger)
    return np.nonzero(mpfb_ray[:, column] > 0.5)[0]


def place_joint_centres(verts: np.ndarray, rig: np.ndarray, tips: np.ndarray, cut: np.ndarray,
                        template: np.ndarray, template_rig: np.ndarray, phalanx_vertices: dict,
                        proximal_vertices: dict) -> tuple[np.ndarray, dict]:
    """Anatomical joint centres (N, 16, 3), MANO order, for samples ``verts`` (N, V, 3) with rig
    joints ``rig`` (N, 16, 3); ``tips`` (5,) fingertip vertices (thumb..pinky); ``cut`` the wrist
    cut's vertex ids; ``template`` (V, 3) / ``template_rig`` (16, 3) the mean hand, where the
    cross-sections are chosen; ``phalanx_vertices`` finger -> ids of its phalanges' vertices,
    ``proximal_vertices`` finger -> ids of its proximal phalanx's vertices (their centroid lies on
    that phalanx's axis).
    Also returns facts for the build report (the hand scale per sample)."""
    sections = CrossSections(template)
    tip_t = template[tips]
    for finger, (j1, j2, j3) in FINGER_JOINTS.items():
        ids = phalanx_vertices[finger]
        t = tip_t[TIP_INDEX[finger]]
        sections.add(f"{finger}2", template_rig[j2], template_rig[j3] - template_rig[j1], ids)
        sections.add(f"{finger}3", template_rig[j3], t - template_rig[j2], ids)
        sections.rings[f"{finger}1"] = proximal_vertices[finger]
    t1, t2, t3 = THUMB_JOINTS
    ids = phalanx_vertices["thumb"]
    sections.add("thumb3", template_rig[t3], tip_t[0] - template_rig[t2], ids)
    sections.add("thumb2-3", (template_rig[t2] + template_rig[t3]) / 2, template_rig[t3] - template_rig[t2], ids)

    tip = verts[:, tips]                                                    # (N, 5, 3)
    joints = np.zeros_like(rig)
    pip, dip, proximal_axis = {}, {}, {}
    for finger, (j1, j2, j3) in FINGER_JOINTS.items():
        pip[finger] = on_axis(rig[:, j2], sections.centroid(verts, f"{finger}2"), rig[:, j3] - rig[:, j1])
        dip[finger] = on_axis(rig[:, j3], sections.centroid(verts, f"{finger}3"), tip[:, TIP_INDEX[finger]] - rig[:, j2])
        proximal_axis[finger] = unit(pip[finger] - sections.centroid(verts, f"{finger}1"))
    middle_phalanges = sum(np.linalg.norm(dip[f] - pip[f], axis=-1) for f in FINGER_JOINTS)
    scale = middle_phalanges / sum(anatomy.MIDDLE[f] for f in FINGER_JOINTS)   # (N,) metres per published mm
    for finger, (j1, j2, j3) in FINGER_JOINTS.items():
        joints[:, j1] = pip[finger] - (anatomy.PROXIMAL[finger] * scale)[:, None] * proximal_axis[finger]
        joints[:, j2], joints[:, j3] = pip[finger], dip[finger]

    ip = on_axis(rig[:, t3], sections.centroid(verts, "thumb3"), tip[:, 0] - rig[:, t2])
    thumb_axis = unit(ip - sections.centroid(verts, "thumb2-3"))
    mcp = ip - (anatomy.PROXIMAL["thumb"] * scale)[:, None] * thumb_axis
    joints[:, t3], joints[:, t2] = ip, mcp
    # The thumb's metacarpal and the palm belong to the palm's mesh, not to the fingers: their
    # lengths follow the sample's own thenar (rig CMC -> MCP) and palm (middle MCP -> centre of the
    # cut), times the one factor that gives the population's mean hand the published length.
    thenar = rig[:, t2] - rig[:, t1]
    thumb_factor = (anatomy.METACARPAL["thumb"] * scale).mean() / np.linalg.norm(thenar, axis=-1).mean()
    joints[:, t1] = mcp - thumb_factor * thenar

    middle_mcp = joints[:, FINGER_JOINTS["middle"][0]]
    palm = verts[:, cut].mean(1) - middle_mcp
    palm_factor = (anatomy.wrist_to_middle_mcp_mm() * scale).mean() / np.linalg.norm(palm, axis=-1).mean()
    joints[:, 0] = middle_mcp + palm_factor * palm
    return joints, {"scale": scale, "thumb_factor": thumb_factor, "palm_factor": palm_factor,
                    "rings": {k: len(v) for k, v in sections.rings.items()}}


def winding_numbers(points: np.ndarray, verts: np.ndarray, faces: np.ndarray, cut: list) -> np.ndarray:
    """(P,) generalised winding numbers of points (P, 3) for the mesh closed over its cut by a fan
    to the cut's centroid: ~1 inside, ~0 outside (Jacobson et al. 2013, solid angles summed)."""
    centre = len(verts)
    closed_verts = np.concatenate([verts, verts[cut].mean(0, keepdims=True)])
    fan = np.array([[cut[i], cut[i - 1], centre] for i in range(len(cut))])
    closed = np.concatenate([faces, fan])
    total = np.zeros(len(points))
    for k, p in enumerate(points):
        a, b, c = (closed_verts[closed[:, i]] - p for i in range(3))
        la, lb, lc = (np.linalg.norm(x, axis=1) for x in (a, b, c))
        det = np.einsum("fi,fi->f", a, np.cross(b, c))
        div = la * lb * lc + np.einsum("fi,fi->f", a, b) * lc + np.einsum("fi,fi->f", b, c) * la \
            + np.einsum("fi,fi->f", c, a) * lb
        total[k] = 2 * np.arctan2(det, div).sum() / (4 * np.pi)
    return total
