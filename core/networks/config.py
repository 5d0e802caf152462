"""What a network is: the few choices that decide its architecture, stored with its weights."""

from __future__ import annotations

import dataclasses
from typing import Optional

ARCHS = ("hamr", "baseline")
BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101")


@dataclasses.dataclass
class NetworkConfig:
    """Architecture of a hand network.

    arch:            "hamr" (heatmaps + iterative hand-model regression) or "baseline"
                     (ResNet regressing 21x3 joints directly).
    backbone:        torchvision ResNet trunk, random init.
    input_size:      side S of the square input crop, pixels (a multiple of 32).
    heatmap_size:    side of the 2D heatmaps (None: input_size // 4).
    num_iterations:  iterative-error-feedback steps of the HAMR regressor.
    use_heatmaps:    False = HAMR without the heatmap stage (the paper's ablation).
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
        if self.heatmap_size is None:
            self.heatmap_size = self.input_size // 4
        if self.heatmap_size < 8:
            raise ValueError(f"heatmap_size must be at least 8, got {self.heatmap_size}")
        if self.num_iterations < 1:
            raise ValueError(f"num_iterations must be at least 1, got {self.num_iterations}")
        if self.num_betas < 0:
            raise ValueError(f"num_betas must be >= 0, got {self.num_betas}")

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
