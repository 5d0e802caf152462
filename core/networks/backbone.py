"""ResNet trunks (torchvision, random init) that return the feature maps of all four stages."""

from __future__ import annotations

import torch
from torch import nn

from core.torchvision_compat import torchvision

STRIDES = (4, 8, 16, 32)


class ResNetTrunk(nn.Module):
    """torchvision ResNet without its pooling and classifier.

    ``forward(images (B, 3, S, S)) -> [f1, f2, f3, f4]`` with ``f_i`` of shape
    ``(B, channels[i], S / STRIDES[i], S / STRIDES[i])``.
    """

    def __init__(self, name: str):
        super().__init__()
        resnet = getattr(torchvision.models, name)(weights=None)
        self.stem = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4
        expansion = 4 if name in ("resnet50", "resnet101", "resnet152") else 1
        self.channels = tuple(c * expansion for c in (64, 128, 256, 512))

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        f1 = self.layer1(self.stem(images))
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
        return [f1, f2, f3, self.layer4(f3)]


def make_trunk(config) -> tuple[nn.Module, "nn.Module | None", int]:
    """The trunk a NetworkConfig asks for: (trunk, evidence, features), where ``evidence`` is the
    frozen landmark trunk's LandmarkEvidence (None for a ResNet) and ``features`` the width of the
    vector the head reads."""
    from .landmark_trunk import LandmarkEvidence, LandmarkTrunk
    if config.pretrained_trunk:
        trunk = LandmarkTrunk()
        evidence = LandmarkEvidence(trunk.embedding_size, config.use_heatmaps)
        return trunk, evidence, evidence.num_features
    trunk = ResNetTrunk(config.backbone)
    return trunk, None, trunk.channels[3]
