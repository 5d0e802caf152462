"""Pose prior: anatomical joint frames, rotation limits, a score for fitting and training,
and a sampler of natural poses for synthetic data.

Each finger joint's relative rotation (axis-angle, in the rest frame, as the layer uses it) is
read in that joint's anatomical frame, built from the rest skeleton:
  flex  - about the axis across the finger; positive curls the finger into the palm,
  abd   - about the palm normal; positive moves the finger toward the little-finger side,
  twist - about the bone itself.
Angles are the axis-angle vector's components on those axes (radians); for the moderate
rotations of a real hand they match the anatomical angles closely.
Left hands are mirrored to the right-hand convention first, so limits mean the same on both sides.

The zero pose is the model's flat rest hand: fingers straight, the thumb as the rig has it.
"""

from __future__ import annotations

import numpy as np
import torch

from .model import JOINT_NAMES, NUM_JOINTS, HandModel
from .rotations import mirror_axis_angle, quaternion_to_axis_angle

# Which point each joint's bone points to, in [16 joints + 5 tips (thumb, index, middle, ring, pinky)].
_BONE_END = {1: 2, 2: 3, 3: 17, 4: 5, 5: 6, 6: 18, 7: 8, 8: 9, 9: 20, 10: 11, 11: 12, 12: 19, 13: 14, 14: 15, 15: 16}
_FINGERS = {"index": (1, 2, 3), "middle": (4, 5, 6), "ring": (10, 11, 12), "pinky": (7, 8, 9), "thumb": (13, 14, 15)}
_THUMB_PAD_TILT = np.deg2rad(60.0)  # the thumb's pad faces the fingers: its "palm normal" is tilted

# Limits (radians) per joint: (flex_min, flex_max), (abd_min, abd_max), (twist_min, twist_max).
# From the hand-biomechanics literature (active ranges), rounded; MCP = knuckle, PIP/DIP = finger
# joints, CMC/MCP/IP = thumb base, middle and tip joints.
_MCP = ((-0.35, 1.60), (-0.35, 0.35), (-0.15, 0.15))
_PIP = ((-0.10, 1.90), (-0.10, 0.10), (-0.10, 0.10))
_DIP = ((-0.20, 1.40), (-0.10, 0.10), (-0.10, 0.10))
LIMITS = {
    "index1": ((-0.35, 1.60), (-0.45, 0.30), (-0.15, 0.15)), "index2": _PIP, "index3": _DIP,
    "middle1": _MCP, "middle2": _PIP, "middle3": _DIP,
    "ring1": ((-0.35, 1.60), (-0.30, 0.40), (-0.15, 0.15)), "ring2": _PIP, "ring3": _DIP,
    "pinky1": ((-0.35, 1.60), (-0.30, 0.60), (-0.20, 0.20)), "pinky2": _PIP, "pinky3": _DIP,
    "thumb1": ((-0.60, 0.90), (-0.60, 0.60), (-0.50, 0.50)),
    "thumb2": ((-0.30, 1.00), (-0.30, 0.30), (-0.30, 0.30)),
    "thumb3": ((-0.30, 1.40), (-0.10, 0.10), (-0.15, 0.15)),
}
# Spread direction of each finger at its knuckle (abduction per unit of "spread").
_SPREAD = {"index": -0.30, "middle": 0.0, "ring": 0.20, "pinky": 0.45}


def anatomical_frames(model: HandModel) -> np.ndarray:
    """(16, 3, 3) orthonormal frames whose columns are the (flex, abd, twist) axes of each joint;
    wrist = identity.

    Computed from the right-hand version of ``model``'s mean rest skeleton.
    """
    right = model if model.side == "right" else model.mirrored()
    joints = right.joint_regressor @ right.v_template                     # (16, 3)
    points = np.concatenate([joints, right.v_template[right.tip_vertex_ids]])  # (21, 3)
    palm_normal = np.cross(joints[1] - joints[0], joints[7] - joints[0])  # index x pinky knuckles
    palm_normal /= np.linalg.norm(palm_normal)
    frames = np.tile(np.eye(3), (NUM_JOINTS, 1, 1))
    for j, end in _BONE_END.items():
        twist = points[end] - points[j]
        twist /= np.linalg.norm(twist)
        normal = palm_normal
        if JOINT_NAMES[j].startswith("thumb"):
            # tilt the thumb's normal about its bone toward the index knuckle
            toward_index = joints[1] - points[j]
            toward_index -= twist * (toward_index @ twist)
            toward_index /= np.linalg.norm(toward_index)
            normal = np.cos(_THUMB_PAD_TILT) * palm_normal + np.sin(_THUMB_PAD_TILT) * toward_index
        flex = np.cross(twist, normal)
        flex /= np.linalg.norm(flex)
        abd = np.cross(flex, twist)
        frames[j] = np.stack([flex, abd, twist], axis=1)
    return frames.astype(np.float32)


class PosePrior(torch.nn.Module):
    """Scores poses (lower is more natural) and samples natural ones.

    ``score(pose)``  -> (B,) = 0.5 * sum(((angles - mean) / std)^2) + limit_weight * limit violation^2
    ``limit_loss``   -> (B,) squared violation of the rotation limits (radians^2), 0 inside them
    ``sample(n)``    -> (n, 16, 3) axis-angle poses: correlated finger curls, spread, thumb motion
    """

    def __init__(self, model: HandModel, limit_weight: float = 100.0):
        super().__init__()
        self.side = model.side
        self.limit_weight = limit_weight
        self.register_buffer("frames", torch.from_numpy(anatomical_frames(model)), persistent=False)  # (16, 3, 3)
        lo = np.zeros((NUM_JOINTS, 3), np.float32)
        hi = np.zeros((NUM_JOINTS, 3), np.float32)
        for j, name in enumerate(JOINT_NAMES[1:], start=1):
            lo[j], hi[j] = np.array(LIMITS[name], np.float32).T
        self.register_buffer("lower", torch.from_numpy(lo), persistent=False)  # (16, 3) flex, abd, twist
        self.register_buffer("upper", torch.from_numpy(hi), persistent=False)
        # Gaussian around a relaxed hand, a quarter of each range wide (a soft regulariser).
        self.register_buffer("mean", torch.from_numpy(0.25 * hi + 0.15 * lo), persistent=False)
        self.register_buffer("std", torch.from_numpy(np.maximum((hi - lo) / 4.0, 0.05)), persistent=False)

    def angles(self, pose: torch.Tensor) -> torch.Tensor:
        """(B, 16, 3) axis-angle -> (B, 16, 3) (flex, abd, twist) per joint; the wrist row is its raw axis-angle."""
        if self.side == "left":
            pose = mirror_axis_angle(pose)
        return torch.einsum("jca,bjc->bja", self.frames.to(pose.dtype), pose)

    def limit_loss(self, pose: torch.Tensor) -> torch.Tensor:
        return self._violation(self.angles(pose)[:, 1:])

    def _violation(self, a: torch.Tensor) -> torch.Tensor:
        """(B, 15, 3) finger angles -> (B,) squared violation of the limits."""
        lower, upper = self.lower[1:].to(a.dtype), self.upper[1:].to(a.dtype)
        over = torch.relu(a - upper) + torch.relu(lower - a)
        return (over * over).sum(dim=(1, 2))

    def score(self, pose: torch.Tensor) -> torch.Tensor:
        a = self.angles(pose)[:, 1:]
        z = (a - self.mean[1:].to(a.dtype)) / self.std[1:].to(a.dtype)
        return 0.5 * (z * z).sum(dim=(1, 2)) + self.limit_weight * self._violation(a)

    def from_angles(self, angles: torch.Tensor) -> torch.Tensor:
        """(B, 16, 3) (flex, abd, twist) -> (B, 16, 3) axis-angle for this side (wrist row passed through)."""
        pose = torch.einsum("jca,bja->bjc", self.frames.to(angles.dtype), angles)
        pose[:, 0] = angles[:, 0]
        return mirror_axis_angle(pose) if self.side == "left" else pose

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator = None, global_orient: bool = False) -> torch.Tensor:
        """(n, 16, 3) natural poses: a shared grasp level, per-finger variation, occasional
        pointing/peace-sign-like independent fingers, spread that closes as fingers curl.
        ``global_orient=True`` also draws a uniformly random wrist rotation."""
        g = generator

        def uniform(*shape, low=0.0, high=1.0):
            return low + (high - low) * torch.rand(*shape, generator=g)

        angles = torch.zeros(n, NUM_JOINTS, 3)
        grasp = uniform(n, 1) ** 1.3                                   # 0 open .. 1 fist
        independent = torch.rand(n, 4, generator=g) < 0.2              # fingers that do their own thing
        curl = (grasp + 0.2 * torch.randn(n, 4, generator=g)).clamp(-0.15, 1.0)
        curl = torch.where(independent, uniform(n, 4, low=-0.15, high=1.0), curl)
        spread = uniform(n, 1, low=-0.3, high=1.0) * (1.0 - 0.8 * curl.clamp(min=0))  # (n, 4)
        for f, name in enumerate(("index", "middle", "ring", "pinky")):
            mcp, pip, dip = _FINGERS[name]
            c = curl[:, f]
            # a full curl (c = 1) is the named fist of core.hand_model.picture: fingers onto the palm,
            # not through it (the anatomical full range would bury this mesh's thick fingertips in the palm)
            angles[:, mcp, 0] = c * 1.25 + 0.10 * torch.randn(n, generator=g)
            angles[:, pip, 0] = c * 1.55 + 0.10 * torch.randn(n, generator=g)
            angles[:, dip, 0] = angles[:, pip, 0] * uniform(n, low=0.45, high=0.65)  # DIP follows PIP
            angles[:, mcp, 1] = _SPREAD[name] * spread[:, f] + 0.05 * torch.randn(n, generator=g)
            angles[:, mcp, 2] = 0.05 * torch.randn(n, generator=g)
        t1, t2, t3 = _FINGERS["thumb"]
        thumb_curl = (0.6 * grasp[:, 0] + 0.4 * uniform(n)).clamp(0, 1)
        angles[:, t1, 0] = -0.3 + 1.0 * thumb_curl + 0.15 * torch.randn(n, generator=g)
        angles[:, t1, 1] = uniform(n, low=-0.5, high=0.5)
        angles[:, t1, 2] = uniform(n, low=-0.4, high=0.4)
        angles[:, t2, 0] = 0.9 * thumb_curl * uniform(n, low=0.3, high=1.0)
        angles[:, t3, 0] = 1.2 * thumb_curl * uniform(n, low=0.2, high=1.0)
        angles[:, t2:t3 + 1, 2] = 0.1 * torch.randn(n, 2, generator=g)
        angles = torch.maximum(torch.minimum(angles, self.upper.cpu()), self.lower.cpu())
        if global_orient:
            angles[:, 0] = random_axis_angle(n, g)
        return self.from_angles(angles).to(self.frames.device)


def random_axis_angle(n: int, generator: torch.Generator = None) -> torch.Tensor:
    """(n, 3) rotations uniformly distributed over SO(3) (via uniform unit quaternions)."""
    q = torch.randn(n, 4, generator=generator)
    return quaternion_to_axis_angle(q / q.norm(dim=1, keepdim=True))
