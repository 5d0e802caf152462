"""A live record's hand -> the rig's pose channels, smoothed causally (numpy only, no bpy).

The live rig is the mean-shape hand of the engine's rig file (``handcap live --rig``), so its rest
wrist may sit a little off the shape the engine estimated for this frame: the root bone is placed
so that the rig's wrist lands on the record's ``joints_3d[0]`` (the captured wrist), and every bone
turns by the record's ``pose`` (rig_math.basis_quaternions, as an imported capture is keyed).

Smoothing is causal (a live view cannot look ahead): each new value moves the shown one a share
``1 - 0.9 * strength`` of the way, quaternions by normalised lerp in one hemisphere. Strength 0
shows every record as it is.
"""

from __future__ import annotations

import numpy as np

from . import rig_math


def best_hands(record: dict) -> dict:
    """{side: hand} of one frame record: the most confident hand of each side."""
    best = {}
    for hand in record.get("hands", ()):
        side = hand.get("side")
        if side in ("right", "left") and (side not in best or hand.get("confidence", 0) > best[side].get("confidence", 0)):
            best[side] = hand
    return best


def pose_channels(hand: dict, bone_rotations: np.ndarray, rest_wrist: np.ndarray) -> tuple:
    """(quaternions (J, 4) w-first, root location (3,) bone space) for one record hand.

    bone_rotations (J, 3, 3): the rig's rest bone rotations (armature space = camera space, metres);
    rest_wrist (3,): the rig's rest wrist position."""
    pose = np.asarray(hand["pose"], np.float64)[None]                      # (1, J, 3) axis-angle
    wrist = np.asarray(hand["joints_3d"], np.float64)[0]                   # (3,) camera space
    quats = rig_math.basis_quaternions(pose, bone_rotations)[0]
    location = rig_math.root_locations((wrist - np.asarray(rest_wrist, np.float64))[None], bone_rotations[0])[0]
    return quats, location


class CausalSmoother:
    """Smooths (quaternions (J, 4), location (3,)) pairs as they come; ``reset`` forgets the past."""

    def __init__(self, strength: float = 0.5):
        self.share = 1.0 - 0.9 * float(np.clip(strength, 0.0, 1.0))
        self.quats = None
        self.location = None

    def reset(self) -> None:
        self.quats = self.location = None

    def __call__(self, quats: np.ndarray, location: np.ndarray) -> tuple:
        quats, location = np.asarray(quats, np.float64), np.asarray(location, np.float64)
        if self.quats is None or self.share >= 1.0:
            self.quats, self.location = quats.copy(), location.copy()
            return self.quats, self.location
        sign = np.where(np.sum(quats * self.quats, axis=-1, keepdims=True) < 0, -1.0, 1.0)
        mixed = self.quats + self.share * (sign * quats - self.quats)
        self.quats = mixed / np.maximum(np.linalg.norm(mixed, axis=-1, keepdims=True), 1e-12)
        self.location = self.location + self.share * (location - self.location)
        return self.quats, self.location
