"""Where a photo detector's 21 hand landmarks sit on the open hand.

The open hand's 21 keypoints are its anatomical joint centres and fingertip vertices. MediaPipe's
landmark network (and the hand datasets it learned from) put some landmarks elsewhere: its thumb
base lies well up the thumb's metacarpal from the carpometacarpal joint centre, its knuckles a
little past the MCP centres, its fingertips inside the finger pads. Fitting the model's own
keypoints onto those landmarks would bend the hand to make up the difference, so the fit instead
compares the landmarks with *landmark points*: each keypoint plus a fixed offset that rides on the
bone(s) at that keypoint and scales with the hand's length. The offsets are learned on synthetic
renders of the open hand, whose true pose is known (``python -m training.landmark_calibration``),
and shipped in ``assets/landmark_offsets.json``.

    landmarks = LandmarkPoints("right")     # a torch module: offsets as buffers
    points = landmarks(layer(betas, pose, transl))                           # (B, 21, 3)
"""

from __future__ import annotations

import functools
import json
import os
from typing import Optional

import numpy as np
import torch

from .layer import HandOutput
from .model import ASSET_DIR, KEYPOINT_ORDER, PARENTS

OFFSETS_PATH = os.path.join(ASSET_DIR, "landmark_offsets.json")
_TIP_PARENT = {16: 15, 17: 3, 18: 6, 19: 12, 20: 9}    # [16 joints + 5 tips] tip -> the joint it rides on


def attached_joints(keypoint: int) -> tuple[int, ...]:
    """The joints (MANO order) whose rotations carry keypoint ``keypoint``'s (0-20) offset: the wrist
    rides on the root, the thumb base on the thumb's metacarpal, a finger joint halfway between the
    bones that meet there (as the skin does), a fingertip on its distal phalanx."""
    index = int(KEYPOINT_ORDER[keypoint])
    if index == 0:
        return (0,)
    if index == 13:
        return (13,)
    if index in _TIP_PARENT:
        return (_TIP_PARENT[index],)
    return (int(PARENTS[index]), index)


def attachment_matrix() -> torch.Tensor:
    """(21, 16) weights: keypoint k's offset turns with sum_j A[k, j] R_world[j]."""
    matrix = torch.zeros(21, 16)
    for k in range(21):
        joints = attached_joints(k)
        matrix[k, list(joints)] = 1.0 / len(joints)
    return matrix


def hand_scale(rest_joints: torch.Tensor, template_length: float) -> torch.Tensor:
    """(B, 16, 3) rest joints -> (B,) this hand's wrist -> middle MCP length over the template's."""
    return (rest_joints[:, 4] - rest_joints[:, 0]).norm(dim=-1) / template_length


def landmark_points(keypoints: torch.Tensor, world_rotations: torch.Tensor, scale: torch.Tensor,
                    offsets: torch.Tensor, attachment: torch.Tensor) -> torch.Tensor:
    """keypoints (B, 21, 3) posed model keypoints, world_rotations (B, 16, 3, 3), scale (B,),
    offsets (21, 3) metres in the rest frame, attachment (21, 16) -> (B, 21, 3) landmark points."""
    rotations = torch.einsum("kj,bjcd->bkcd", attachment.to(world_rotations), world_rotations)  # (B, 21, 3, 3)
    turned = (rotations @ offsets.to(keypoints)[None, :, :, None])[..., 0]                      # (B, 21, 3)
    return keypoints + scale[:, None, None] * turned


@functools.lru_cache(maxsize=4)
def load_offsets(path: str = OFFSETS_PATH) -> tuple[np.ndarray, float]:
    """(21, 3) offsets in metres and the template length they were learned at (metres)."""
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    offsets = np.asarray(data["offsets_mm"], np.float64) / 1000.0
    if offsets.shape != (21, 3):
        raise ValueError(f"{path}: offsets_mm must be 21 x 3, got {offsets.shape}")
    return offsets, float(data["template_length_mm"]) / 1000.0


class LandmarkPoints(torch.nn.Module):
    """A posed hand's landmark points: ``forward(out: HandOutput, weight=None) -> (B, 21, 3)``.

    For a left hand model (the right one mirrored in x) the offsets are mirrored too. ``weight``
    (B,) scales each hand's offsets (0 gives the model's own keypoints).
    """

    def __init__(self, side: str = "right", path: str = OFFSETS_PATH):
        super().__init__()
        offsets, self.template_length = load_offsets(path)
        if side == "left":
            offsets = offsets * np.array([-1.0, 1.0, 1.0])
        self.register_buffer("offsets", torch.as_tensor(offsets, dtype=torch.float32), persistent=False)  # (21, 3) m
        self.register_buffer("attachment", attachment_matrix(), persistent=False)                         # (21, 16)

    def forward(self, out: HandOutput, weight: Optional[torch.Tensor] = None) -> torch.Tensor:
        scale = hand_scale(out.rest_joints, self.template_length)
        if weight is not None:
            scale = scale * weight
        return landmark_points(out.keypoints, out.world_rotations, scale, self.offsets, self.attachment)
