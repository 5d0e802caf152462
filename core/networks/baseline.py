"""The FreiHAND student-report baseline: a ResNet regressing the 21 x 3 joints directly.

Random-init torchvision ResNet -> global average pool -> linear -> 20 joints (the wrist is the
origin) in units of 0.1 m, plus a weak-perspective camera so 2D keypoints exist for overlays and
2D supervision. No hand model, no mesh. With ``backbone="mediapipe_hand"`` the head reads the
frozen landmark trunk's features instead (the same inputs as HAMR's regressor there, see
core.networks.landmark_trunk) through one hidden layer (the trunk cannot adapt to a linear head as a
trained ResNet does), and ``forward`` also takes the trunk's cached outputs (a dict).
"""

from __future__ import annotations

import torch
from torch import nn

from . import camera as cam
from .backbone import make_trunk
from .config import NetworkConfig
from .landmark_trunk import trunk_outputs

NUM_KEYPOINTS = 21
OUTPUT_UNIT = 0.1  # metres per unit of the linear layer's joint outputs
HIDDEN = 1024      # the hidden layer of the head on the frozen landmark trunk


class Baseline(nn.Module):
    """``forward(images (B, 3, S, S) normalised per config.input_normalization, or trunk outputs) -> dict``:

    joints_3d     (B, 21, 3)  metres, root-relative (joint 0, the wrist, is exactly 0), camera axes
    camera        (B, 3)      weak perspective (s, tx, ty)
    keypoints_2d  (B, 21, 2)  normalised crop coordinates, ``camera`` applied to ``joints_3d``
    """

    def __init__(self, config: NetworkConfig):
        super().__init__()
        self.config = config
        self.trunk, evidence, features = make_trunk(config)
        if evidence is not None:
            self.evidence = evidence
        outputs = nn.Linear(features if not config.pretrained_trunk else HIDDEN, (NUM_KEYPOINTS - 1) * 3 + 3)
        with torch.no_grad():
            outputs.bias.zero_()
            outputs.bias[-3] = 2 * cam.HAND_FILL / cam.HAND_LENGTH
        self.head = outputs if not config.pretrained_trunk else \
            nn.Sequential(nn.Linear(features, HIDDEN), nn.ReLU(inplace=True), nn.Dropout(0.2), outputs)

    def forward(self, images) -> dict:
        if self.config.pretrained_trunk:
            features = self.evidence(trunk_outputs(self.trunk, images))
        else:
            features = self.trunk(images)[3].mean(dim=(2, 3))
        out = self.head(features).float()
        B = out.shape[0]
        joints = torch.cat([out.new_zeros(B, 1, 3), out[:, :-3].reshape(B, NUM_KEYPOINTS - 1, 3) * OUTPUT_UNIT], dim=1)
        camera = out[:, -3:]
        return {"joints_3d": joints, "camera": camera, "keypoints_2d": cam.project(joints, camera)}
