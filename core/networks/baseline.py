"""The FreiHAND student-report baseline: a ResNet regressing the 21 x 3 joints directly.

Random-init torchvision ResNet -> global average pool -> linear -> 20 joints (the wrist is the
origin) in units of 0.1 m, plus a weak-perspective camera so 2D keypoints exist for overlays and
2D supervision. No hand model, no mesh.
"""

from __future__ import annotations

import torch
from torch import nn

from . import camera as cam
from .backbone import ResNetTrunk
from .config import NetworkConfig

NUM_KEYPOINTS = 21
OUTPUT_UNIT = 0.1  # metres per unit of the linear layer's joint outputs


class Baseline(nn.Module):
    """``forward(images (B, 3, S, S) normalised) -> dict``:

    joints_3d     (B, 21, 3)  metres, root-relative (joint 0, the wrist, is exactly 0), camera axes
    camera        (B, 3)      weak perspective (s, tx, ty)
    keypoints_2d  (B, 21, 2)  normalised crop coordinates, ``camera`` applied to ``joints_3d``
    """

    def __init__(self, config: NetworkConfig):
        super().__init__()
        self.config = config
        self.trunk = ResNetTrunk(config.backbone)
        self.head = nn.Linear(self.trunk.channels[3], (NUM_KEYPOINTS - 1) * 3 + 3)
        with torch.no_grad():
            self.head.bias.zero_()
            self.head.bias[-3] = 2 * cam.HAND_FILL / cam.HAND_LENGTH

    def forward(self, images: torch.Tensor) -> dict:
        out = self.head(self.trunk(images)[3].mean(dim=(2, 3))).float()
        B = out.shape[0]
        joints = torch.cat([out.new_zeros(B, 1, 3), out[:, :-3].reshape(B, NUM_KEYPOINTS - 1, 3) * OUTPUT_UNIT], dim=1)
        camera = out[:, -3:]
        return {"joints_3d": joints, "camera": camera, "keypoints_2d": cam.project(joints, camera)}
