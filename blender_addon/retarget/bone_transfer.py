"""The retarget itself, in numpy (no bpy): hand and finger frames, and the rotation each target
bone needs so that its direction and its curl axis follow the source finger.

Conventions: world space is Blender's; a rotation (3, 3) has a bone's X, Y, Z axes as columns;
bone Y runs from head to tail. Every rig is read through two frames built from its rest pose
alone, so bone rolls and rest poses do not matter:

* the **hand frame** H: Y from the wrist to the middle finger's knuckle, Z the palm normal
  (toward the palm; from the chirality of wrist, index and pinky knuckles), X = Y x Z;
* a **finger frame** F per bone: Y the bone's direction, X its curl axis ``unit(Y x palm
  normal)`` (a positive turn about it bends the bone toward the palm; the thumb too),
  Z = X x Y. handcap's own rig has its bone axes exactly there (``rig_math.bone_z_axes``).

Each bone carries its frame rigidly (``F = W @ f`` with ``f = B_rest^T F_rest`` fixed in the
bone). A source finger bone's frame relative to the source hand, ``H_s^T F_s``, becomes the
target bone's frame relative to the target hand: direction and curl axis follow the source
finger whatever the target's rest pose and rolls. The target hand is the target's rest hand
(the arm decides it), or with ``wrist_rotation`` the source hand's world orientation.
Metacarpals stay at rest, or turn by ``metacarpal_share`` of their finger's first bone's turn.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .name_mapping import JOINTS, METACARPALS
from .rotations import orthonormal, rotation_power, unit


# --- Blender's pose, in numpy ---------------------------------------------------------------

def posed_matrices(rest: np.ndarray, parents, basis: np.ndarray) -> np.ndarray:
    """Armature-space pose matrices (N, B, 4, 4) the way Blender computes them.

    rest: (B, 4, 4) each bone's ``matrix_local``; parents: (B,) parent index or -1; basis: (N, B, 4, 4) each pose bone's ``matrix_basis`` (location, rotation).
    ``P_b = P_parent @ inv(rest_parent) @ rest_b @ basis_b`` (full inheritance).
    """
    rest = np.asarray(rest, np.float64)
    out = np.empty(np.shape(basis))
    for b in _parents_first(parents):
        p = int(parents[b])
        if p < 0:
            out[:, b] = rest[b] @ basis[:, b]
        else:
            out[:, b] = out[:, p] @ (np.linalg.inv(rest[p]) @ rest[b]) @ basis[:, b]
    return out


def _parents_first(parents) -> list:
    """Bone indices ordered so that every parent comes before its children."""
    depth = {}

    def depth_of(b):
        if b not in depth:
            p = int(parents[b])
            depth[b] = 0 if p < 0 else depth_of(p) + 1
        return depth[b]
    return sorted(range(len(parents)), key=depth_of)


def basis_for(rest_parent: np.ndarray, posed_parent: np.ndarray, rest: np.ndarray,
              rotation: np.ndarray, head: np.ndarray = None) -> tuple:
    """The pose channels that give a bone the armature-space ``rotation`` (N, 3, 3), and its
    head at ``head`` (N, 3) when given: returns (basis rotations (N, 3, 3), locations (N, 3),
    posed bone matrices (N, 4, 4)).

    rest_parent / posed_parent: (4, 4) / (N, 4, 4) for the parent, or None for a root bone.
    """
    rest = np.asarray(rest, np.float64)
    if rest_parent is None:
        X = np.broadcast_to(rest, (len(rotation), 4, 4))
    else:
        X = posed_parent @ (np.linalg.inv(rest_parent) @ rest)       # the bone with an identity basis
    basis_rotation = np.swapaxes(X[:, :3, :3], 1, 2) @ rotation
    location = np.zeros((len(rotation), 3))
    if head is not None:
        location = np.einsum("nba,nb->na", X[:, :3, :3], head - X[:, :3, 3])
    posed = np.array(X)
    posed[:, :3, :3] = rotation
    posed[:, :3, 3] = X[:, :3, 3] + np.einsum("nab,nb->na", X[:, :3, :3], location)
    return basis_rotation, location, posed


# --- hand geometry --------------------------------------------------------------------------

def palm_normal(wrist: np.ndarray, index1: np.ndarray, pinky1: np.ndarray, side: str) -> np.ndarray:
    """Unit normal (3,) toward the palm: ``(index1 - wrist) x (pinky1 - wrist)``, negated for a
    left hand (hands are mirror images). Same rule as ``rig_math.palm_normal``."""
    n = np.cross(np.asarray(index1, np.float64) - wrist, np.asarray(pinky1, np.float64) - wrist)
    if np.linalg.norm(n) < 1e-12:
        raise ValueError("the wrist and the index and pinky knuckles lie on one line: no palm")
    return unit(-n if side == "left" else n)


def hand_frame(wrist, index1, middle1, pinky1, side: str) -> np.ndarray:
    """The hand frame (3, 3) (module doc): Y toward the middle knuckle, Z toward the palm."""
    y = unit(np.asarray(middle1, np.float64) - wrist)
    n = palm_normal(wrist, index1, pinky1, side)
    z = unit(n - (n @ y) * y)
    return np.stack([np.cross(y, z), y, z], axis=1)


def finger_frames(directions: np.ndarray, hand: np.ndarray) -> np.ndarray:
    """Finger frames (S, 3, 3) for bone directions (S, 3) of a hand with frame ``hand`` (3, 3).

    X = unit(Y x palm normal); a bone along the palm normal (never in a hand at rest) falls
    back to the hand's X made perpendicular to it.
    """
    y = unit(directions)
    x = np.cross(y, hand[:, 2])
    weak = np.linalg.norm(x, axis=-1) < 1e-3
    if np.any(weak):
        hx = hand[:, 0]
        x[weak] = hx - (y[weak] @ hx)[:, None] * y[weak]
    x = unit(x)
    return np.stack([x, y, np.cross(x, y)], axis=-1)


@dataclasses.dataclass
class HandRest:
    """One hand of an armature at rest, in world space, for the slots that are mapped."""

    side: str
    rotations: dict        # slot -> (3, 3) the bone's rest rotation (columns X, Y, Z)
    heads: dict            # slot -> (3,)
    tails: dict            # slot -> (3,)

    def hand(self, landmarks: tuple = ("index1", "middle1", "pinky1")) -> np.ndarray:
        """The rest hand frame (3, 3) from the wrist and the knuckles ``landmarks`` (index side,
        middle, little-finger side; see ``shared_landmarks``)."""
        h = self.heads
        first, middle, outer = landmarks
        return hand_frame(h["wrist"], h[first], h[middle], h[outer], self.side)

    def finger_frames(self, landmarks: tuple = ("index1", "middle1", "pinky1")) -> dict:
        """slot -> the finger frame (3, 3) at rest, world space, for every mapped non-wrist slot."""
        slots = [s for s in self.rotations if s != "wrist"]
        if not slots:
            return {}
        dirs = np.stack([self.tails[s] - self.heads[s] for s in slots])
        return dict(zip(slots, finger_frames(dirs, self.hand(landmarks))))

    def in_bone(self, frames: dict) -> dict:
        """Frames (slot -> (3, 3) world, at rest) expressed in their bones: ``B^T F``."""
        return {s: self.rotations[s].T @ f for s, f in frames.items()}


def shared_landmarks(a: HandRest, b: HandRest) -> tuple:
    """The knuckles both hands have, to build both hand frames from the same landmarks:
    (index side, middle, little-finger side); ValueError naming what is missing."""
    both = [s for s in ("index1", "middle1", "ring1", "pinky1") if s in a.heads and s in b.heads]
    if "wrist" not in a.heads or "wrist" not in b.heads or len(both) < 2:
        raise ValueError(f"{b.side} hand: the wrist and at least two finger knuckles must be mapped "
                         "to find the palm")
    return both[0], "middle1" if "middle1" in both else both[1], both[-1]


@dataclasses.dataclass
class TransferOptions:
    wrist_rotation: bool = False     # the target hand turns like the captured hand (world space)
    wrist_location: bool = False     # ... and its head goes where the captured wrist is
    metacarpal_share: float = 0.0    # 0: metacarpals at rest; 1: the whole first knuckle's turn


def target_world_rotations(source: HandRest, source_posed: dict, target: HandRest,
                           options: TransferOptions) -> dict:
    """World rotations (slot -> (N, 3, 3)) for the target bones to key.

    source_posed: slot -> (N, 3, 3) world rotations of the source's bones over the take.
    Fingers: every target slot with a source bone; the wrist with ``wrist_rotation``; the
    metacarpals when ``metacarpal_share`` > 0 and their finger's first bone is mapped.
    """
    landmarks = shared_landmarks(source, target)
    Hs0, Ht0 = source.hand(landmarks), target.hand(landmarks)
    hs_local = source.rotations["wrist"].T @ Hs0                   # the hand frame in the wrist bone
    Hs = source_posed["wrist"] @ hs_local                          # (N, 3, 3)
    out = {}
    if options.wrist_rotation:
        out["wrist"] = Hs @ (target.rotations["wrist"].T @ Ht0).T
        Ht = Hs
    else:
        Ht = np.broadcast_to(Ht0, Hs.shape)
    fs_local = source.in_bone(source.finger_frames(landmarks))
    target_frames = target.finger_frames(landmarks)
    ft_local = target.in_bone(target_frames)
    relative = {}                                                  # slot -> (N, 3, 3) in the hand frame
    for slot in JOINTS[1:]:
        if slot in ft_local and slot in fs_local and slot in source_posed:
            relative[slot] = np.swapaxes(Hs, 1, 2) @ source_posed[slot] @ fs_local[slot]
            out[slot] = Ht @ relative[slot] @ ft_local[slot].T
    if options.metacarpal_share > 0:
        for meta in METACARPALS:
            first = meta[:-1] + "1"
            if meta in target.rotations and first in relative:
                rest_relative = Ht0.T @ target_frames[first]
                turn = relative[first] @ rest_relative.T               # the knuckle's turn, hand frame
                meta_relative = Ht0.T @ target.rotations[meta]
                out[meta] = Ht @ rotation_power(turn, options.metacarpal_share) @ meta_relative
    return out


def world_to_armature(object_matrix: np.ndarray) -> tuple:
    """(rotation (3, 3), inverse 4x4) of an object's world matrix (scale dropped from the rotation)."""
    m = np.asarray(object_matrix, np.float64)
    return orthonormal(m[:3, :3]), np.linalg.inv(m)


def local_channels(rest: np.ndarray, parents, keyed: dict, heads: dict = None) -> dict:
    """Pose channels for the keyed bones of an armature whose other bones stay at rest.

    rest: (B, 4, 4) ``matrix_local``; parents (B,) (-1: none); keyed: bone index -> (N, 3, 3)
    armature-space rotations; heads: bone index -> (N, 3) armature-space head positions.
    Returns bone index -> (basis rotations (N, 3, 3), locations (N, 3)). Parents are solved
    before their children, so a keyed finger under a keyed metacarpal gets the right basis.
    """
    heads = heads or {}
    n = len(next(iter(keyed.values())))
    posed, out = {}, {}

    def pose_of(b):
        if b in posed:
            return posed[b]
        p = int(parents[b])
        parent_rest = rest[p] if p >= 0 else None
        parent_posed = pose_of(p) if p >= 0 else None
        if b in keyed:
            rot, loc, posed[b] = basis_for(parent_rest, parent_posed, rest[b], keyed[b], heads.get(b))
            out[b] = (rot, loc)
        elif p < 0:
            posed[b] = np.broadcast_to(rest[b], (n, 4, 4))
        else:
            posed[b] = parent_posed @ (np.linalg.inv(parent_rest) @ rest[b])
        return posed[b]

    for b in sorted(keyed):
        pose_of(b)
    return out
