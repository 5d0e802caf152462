"""Pose from 21 keypoints in closed form: the joint rotations that point each bone at its target.

A start for fitting, with no optimisation: the global rotation turns the rest palm (the wrist and
the four finger MCPs) onto the target's palm (Kabsch); then, joint by joint down each finger, the
joint gets the smallest rotation (a swing, no twist) that turns its rest bone toward the target
bone, seen in its parent's frame. Only bone directions are used, so targets of another scale or
with slightly different joint definitions (another skeleton, a detector's landmarks) still give
the matching finger pose.
"""

from __future__ import annotations

import numpy as np
import torch

from .model import KEYPOINT_ORDER, NUM_JOINTS, PARENTS
from .rotations import matrix_to_axis_angle

PALM_KEYPOINTS = (0, 5, 9, 13, 17)          # wrist and the index, middle, ring, pinky MCPs
KEYPOINT_OF = np.argsort(KEYPOINT_ORDER)    # [16 joints + 5 tips] index -> keypoint index
TIP_OF_FINGER_END = {3: 17, 6: 18, 9: 20, 12: 19, 15: 16}   # last joint of a finger -> its tip (16 + finger)


def bone_child(joint: int) -> int:
    """The [16 joints + 5 tips] index at the far end of joint ``joint``'s bone (joints 1-15)."""
    return TIP_OF_FINGER_END.get(joint, joint + 1)


def kabsch(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(N, P, 3), (N, P, 3) point sets -> (N, 3, 3) the rotation R best mapping centred source onto
    centred target (R @ s ~ t), without reflection."""
    s = source - source.mean(1, keepdim=True)
    t = target - target.mean(1, keepdim=True)
    u, _, vh = torch.linalg.svd(t.transpose(1, 2) @ s)                       # (N, 3, 3)
    sign = torch.sign(torch.linalg.det(u @ vh))
    fix = torch.diag_embed(torch.stack([torch.ones_like(sign), torch.ones_like(sign), sign], dim=1))
    return u @ fix @ vh


def swing(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N, 3), (N, 3) directions -> (N, 3, 3) the smallest rotation turning a toward b."""
    a = a / a.norm(dim=-1, keepdim=True).clamp(min=1e-9)
    b = b / b.norm(dim=-1, keepdim=True).clamp(min=1e-9)
    axis = torch.cross(a, b, dim=-1)
    sin, cos = axis.norm(dim=-1), (a * b).sum(-1)
    k = axis / sin.clamp(min=1e-9)[:, None]
    skew = torch.zeros(a.shape[0], 3, 3, dtype=a.dtype, device=a.device)
    skew[:, 0, 1], skew[:, 0, 2], skew[:, 1, 2] = -k[:, 2], k[:, 1], -k[:, 0]
    skew = skew - skew.transpose(1, 2)
    eye = torch.eye(3, dtype=a.dtype, device=a.device).expand_as(skew)
    return eye + sin[:, None, None] * skew + (1 - cos)[:, None, None] * (skew @ skew)


def pose_from_keypoints(rest_keypoints: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """rest_keypoints (N, 21, 3): the model's zero-pose keypoints of each hand's shape; targets
    (N, 21, 3): keypoints to match (any origin and scale). Returns (N, 16, 3) axis-angle pose,
    joint 0 the global orientation (the layer pivots it on the wrist)."""
    dtype = targets.dtype
    rest_keypoints, targets = rest_keypoints.double(), targets.double()
    palm = list(PALM_KEYPOINTS)
    world = [None] * NUM_JOINTS                                               # (N, 3, 3) each
    local = [None] * NUM_JOINTS
    world[0] = local[0] = kabsch(rest_keypoints[:, palm], targets[:, palm])
    for joint in range(1, NUM_JOINTS):                                       # parents come first in MANO's order
        start, end = KEYPOINT_OF[joint], KEYPOINT_OF[bone_child(joint)]
        rest_bone = rest_keypoints[:, end] - rest_keypoints[:, start]
        target_bone = targets[:, end] - targets[:, start]
        parent = world[PARENTS[joint]]
        local[joint] = swing(rest_bone, (parent.transpose(1, 2) @ target_bone[..., None])[..., 0])
        world[joint] = parent @ local[joint]
    return matrix_to_axis_angle(torch.stack(local, dim=1)).to(dtype)
