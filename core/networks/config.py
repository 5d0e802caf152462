"""What a network is: the few choices that decide its architecture, stored with its weights."""

from __future__ import annotations

import dataclasses
from typing import Optional

ARCHS = ("hamr", "baseline")
BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101", "mediapipe_hand")
PRETRAINED_TRUNKS = ("mediapipe_hand",)
"""Backbones whose weights ship elsewhere (core/perception/weights) and stay frozen: a network's
weights file holds its head only."""
INPUT_NORMALIZATIONS = {"imagenet": "RGB / 255, minus IMAGE_MEAN, over IMAGE_STD (core.crops)",
                        "unit": "RGB / 255, values in [0, 1] (MediaPipe's landmark network)"}


@dataclasses.dataclass
class NetworkConfig:
    """Architecture of a hand network.

    arch:            "hamr" (heatmaps + iterative hand-model regression) or "baseline"
                     (ResNet regressing 21x3 joints directly).
    backbone:        torchvision ResNet trunk, random init; or "mediapipe_hand", the frozen
                     pretrained hand-landmark network of core.perception (input_size 224), whose
                     embedding, 2D and world landmarks are the head's inputs (core.networks.landmark_trunk).
    input_size:      side S of the square input crop, pixels (a multiple of 32).
    heatmap_size:    side of the 2D heatmaps (None: input_size // 4; unused by "mediapipe_hand",
                     whose 2D stage is the trunk's landmarks).
    num_iterations:  iterative-error-feedback steps of the HAMR regressor.
    use_heatmaps:    False = HAMR without the heatmap stage (the paper's ablation); with
                     "mediapipe_hand" the 2D stage is the trunk's landmarks, and False means the head
                     sees the trunk's embedding alone (no 2D or world landmarks).
    hand_model:      "open" or a path to MANO_RIGHT.pkl (see core.hand_model.load_hand_model).
    num_betas:       shape coefficients the HAMR regressor predicts.
    """

    arch: str = "hamr"
    backbone: str = "resnet18"
    input_size: int = 224
    heatmap_size: Optional[int] = None
    num_iterations: int = 3
    use_heatmaps: bool = True
    hand_model: str = "open"
    num_betas: int = 10

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {self.arch!r}")
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {self.backbone!r}")
        if self.input_size < 32 or self.input_size % 32:
            raise ValueError(f"input_size must be a positive multiple of 32, got {self.input_size}")
        if self.backbone in PRETRAINED_TRUNKS and self.input_size != 224:
            raise ValueError(f"backbone {self.backbone!r} takes 224 px crops, got input_size {self.input_size}")
        if self.heatmap_size is None:
            self.heatmap_size = self.input_size // 4
        if self.heatmap_size < 8:
            raise ValueError(f"heatmap_size must be at least 8, got {self.heatmap_size}")
        if self.num_iterations < 1:
            raise ValueError(f"num_iterations must be at least 1, got {self.num_iterations}")
        if self.num_betas < 0:
            raise ValueError(f"num_betas must be >= 0, got {self.num_betas}")

    @property
    def pretrained_trunk(self) -> bool:
        """True when the trunk is frozen and its weights ship with core.perception, not with the head."""
        return self.backbone in PRETRAINED_TRUNKS

    @property
    def upright_crops(self) -> bool:
        """True when the network wants its crops turned upright (core.crops.upright_angle), as the
        landmark trunk was trained by its authors; False: axis-aligned crops."""
        return self.backbone.startswith("mediapipe")

    @property
    def input_normalization(self) -> str:
        """How crops become this network's input: a key of INPUT_NORMALIZATIONS (core.crops.normalize_image)."""
        return "unit" if self.backbone.startswith("mediapipe") else "imagenet"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "NetworkConfig":
        """Inverse of ``to_dict``; unknown keys are an error (they mean a different code version)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown network config keys {unknown}; known: {sorted(known)}")
        return cls(**data)
