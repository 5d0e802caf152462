"""Hand model data (numpy): mesh, skeleton, skinning, shape and pose spaces, in MANO's layout.

A ``HandModel`` is everything the torch layer needs, and nothing torch-specific. It comes
from the open asset built by ``core.hand_model.build`` (default) or from a user's MANO pickle
(``core.hand_model.mano``). Left hands are the mirrored right hand: x negated, face winding
reversed, so every consumer handles both sides alike.

Canonical frame of the open right hand (metres): origin at the wrist joint, fingers along +y,
palm facing +z, thumb on the +x side. Zero pose = this flat rest hand.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional

import numpy as np

ASSET_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")
OPEN_HAND_PATH = os.path.join(ASSET_DIR, "open_hand_right.npz")

NUM_JOINTS = 16
# MANO's joint order and kinematic tree.
JOINT_NAMES = ("wrist", "index1", "index2", "index3", "middle1", "middle2", "middle3",
               "pinky1", "pinky2", "pinky3", "ring1", "ring2", "ring3", "thumb1", "thumb2", "thumb3")
PARENTS = np.array([-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14], np.int32)
# Fingertips appended after the 16 joints, in this order: thumb, index, middle, ring, pinky.
TIP_NAMES = ("thumb4", "index4", "middle4", "ring4", "pinky4")
# [16 joints + 5 tips] -> the 21 keypoints of FreiHAND / OpenPose / MediaPipe:
# wrist, then thumb, index, middle, ring, pinky, each from base to tip.
KEYPOINT_ORDER = np.array([0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20])
KEYPOINT_NAMES = tuple((JOINT_NAMES + TIP_NAMES)[i] for i in KEYPOINT_ORDER)
# The 20 bones of the 21-keypoint skeleton (keypoint index pairs), finger by finger, thumb first.
KEYPOINT_BONES = ((0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10), (10, 11), (11, 12),
                  (0, 13), (13, 14), (14, 15), (15, 16), (0, 17), (17, 18), (18, 19), (19, 20))
SIDES = ("right", "left")


class HandModelError(ValueError):
    """A hand model file is missing, unreadable or malformed."""


@dataclasses.dataclass
class HandModel:
    """One side of a hand model; arrays are float32 / int32 numpy."""

    name: str                        # "open_hand" or "mano"
    side: str                        # "right" | "left"
    v_template: np.ndarray           # (V, 3) metres, mean shape, zero pose
    faces: np.ndarray                # (F, 3) counter-clockwise = outward
    weights: np.ndarray              # (V, 16) skinning weights, rows sum to 1
    joint_regressor: np.ndarray      # (16, V) rest joints = joint_regressor @ v_shaped
    shapedirs: np.ndarray            # (V, 3, S) v_shaped = v_template + shapedirs @ betas, betas ~ N(0, I)
    tip_vertex_ids: np.ndarray       # (5,) fingertip vertices: thumb, index, middle, ring, pinky
    parents: np.ndarray = dataclasses.field(default_factory=lambda: PARENTS.copy())  # (16,)
    joint_names: tuple = JOINT_NAMES
    face_uvs: Optional[np.ndarray] = None         # (F, 3, 2) per-corner UVs
    posedirs: Optional[np.ndarray] = None         # (135, V, 3) pose correctives per (R_j - I) entry
    pose_mean: Optional[np.ndarray] = None        # (15, 3) MANO's hands_mean (finger joints)
    pose_components: Optional[np.ndarray] = None  # (C, 45) MANO's PCA pose basis, rows
    shape_variance_explained: Optional[np.ndarray] = None  # (S,) cumulative fraction

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def num_betas(self) -> int:
        return int(self.shapedirs.shape[2])

    def mirrored(self) -> "HandModel":
        """The other side: x negated, winding reversed, correctives mirrored accordingly."""
        flip = np.array([-1.0, 1.0, 1.0], np.float32)
        posedirs = None
        if self.posedirs is not None:
            # (R' - I) = M (R - I) M with M = diag(flip): entry (a, b) changes sign by flip[a]*flip[b];
            # each corrective offset is mirrored in x.
            entry_sign = np.tile(np.outer(flip, flip).reshape(9), NUM_JOINTS - 1)  # (135,)
            posedirs = (self.posedirs * entry_sign[:, None, None] * flip).astype(np.float32)
        return dataclasses.replace(
            self,
            side="left" if self.side == "right" else "right",
            v_template=self.v_template * flip,
            faces=self.faces[:, ::-1].copy(),
            face_uvs=None if self.face_uvs is None else self.face_uvs[:, ::-1].copy(),
            shapedirs=self.shapedirs * flip[None, :, None],
            posedirs=posedirs,
            pose_mean=None if self.pose_mean is None else self.pose_mean * np.array([1.0, -1.0, -1.0], np.float32),
            pose_components=None if self.pose_components is None
            else (self.pose_components.reshape(-1, 15, 3) * np.array([1.0, -1.0, -1.0], np.float32)).reshape(-1, 45),
        )

    def validate(self, source: str = "hand model") -> None:
        """Check shapes and values; raise HandModelError naming the first problem."""
        V = self.num_vertices
        expect = {
            "v_template": (self.v_template, (V, 3)),
            "faces": (self.faces, (None, 3)),
            "weights": (self.weights, (V, NUM_JOINTS)),
            "joint_regressor": (self.joint_regressor, (NUM_JOINTS, V)),
            "shapedirs": (self.shapedirs, (V, 3, None)),
            "tip_vertex_ids": (self.tip_vertex_ids, (5,)),
            "parents": (self.parents, (NUM_JOINTS,)),
        }
        if self.posedirs is not None:
            expect["posedirs"] = (self.posedirs, ((NUM_JOINTS - 1) * 9, V, 3))
        if self.face_uvs is not None:
            expect["face_uvs"] = (self.face_uvs, (self.faces.shape[0], 3, 2))
        for key, (array, shape) in expect.items():
            if array.ndim != len(shape) or any(w is not None and d != w for d, w in zip(array.shape, shape)):
                raise HandModelError(f"{source}: '{key}' has shape {array.shape}, expected {shape}")
            if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
                raise HandModelError(f"{source}: '{key}' contains NaN or infinite values")
        if self.faces.min() < 0 or self.faces.max() >= V or self.tip_vertex_ids.max() >= V:
            raise HandModelError(f"{source}: vertex index out of range [0, {V})")
        if not np.array_equal(self.parents, PARENTS):
            raise HandModelError(f"{source}: kinematic tree {self.parents.tolist()} is not MANO's")
        if np.abs(self.weights.sum(1) - 1).max() > 1e-3:
            raise HandModelError(f"{source}: skinning weight rows must sum to 1")


def load_open_hand(side: str = "right", path: str = OPEN_HAND_PATH) -> HandModel:
    """The open hand model built from MakeHuman/MPFB2 (CC0) data, shipped with handcap."""
    if side not in SIDES:
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    if not os.path.isfile(path):
        raise HandModelError(f"{path}: open hand asset missing; rebuild it with `python -m core.hand_model.build`")
    with np.load(path, allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    model = HandModel(
        name=str(data["name"]),
        side="right",
        v_template=data["v_template"].astype(np.float32),
        faces=data["faces"].astype(np.int32),
        face_uvs=data["face_uvs"].astype(np.float32) if "face_uvs" in data else None,
        weights=data["weights"].astype(np.float32),
        joint_regressor=data["joint_regressor"].astype(np.float32),
        shapedirs=data["shapedirs"].astype(np.float32),
        tip_vertex_ids=data["tip_vertex_ids"].astype(np.int64),
        parents=data["parents"].astype(np.int32),
        joint_names=tuple(str(n) for n in data["joint_names"]),
        shape_variance_explained=data.get("shape_variance_explained"),
    )
    model.validate(path)
    return model if side == "right" else model.mirrored()


def load_hand_model(name: str = "open", side: str = "right") -> HandModel:
    """``name`` is 'open' (the shipped open hand) or a path to a MANO pickle or its folder."""
    if name in ("open", "open_hand"):
        return load_open_hand(side)
    from .mano import load_mano  # only for users who have MANO
    return load_mano(name, side)
