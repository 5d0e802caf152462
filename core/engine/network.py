"""The hand network as the engine runs it: shipped weights, device, threads, batched crops.

Shipped weights live in ``core/weights/`` (half-precision safetensors): ``hamr_fast`` (ResNet-18,
128 px crops, for the CPU) and ``hamr_accurate`` (larger, for a GPU) when it exists.
"""

from __future__ import annotations

import os
from typing import Optional

import numpy as np
import torch

from core.crops import normalize_image
from core.hand_model.rotations import matrix_to_axis_angle
from core.networks import keypoints_from_heatmaps, load_weights

from .shipped import SHIPPED, WEIGHTS_DIR, EngineError, check_weights, missing_weights  # noqa: F401 (re-export)


def resolve_device(setting: str) -> torch.device:
    """'auto' | 'cpu' | 'cuda' -> a torch device (auto: the GPU when there is one)."""
    if setting == "cuda" and not torch.cuda.is_available():
        raise EngineError("--device cuda: no CUDA GPU is available to this Python")
    if setting not in ("auto", "cpu", "cuda"):
        raise EngineError(f"--device must be auto, cpu or cuda, not {setting!r}")
    return torch.device("cuda" if setting != "cpu" and torch.cuda.is_available() else "cpu")


def resolve_weights(spec: Optional[str], device: torch.device) -> str:
    """A weights path from --weights: a file, 'fast', 'accurate', or None (accurate on a GPU when
    shipped, else fast)."""
    check_weights(spec)
    if spec and spec not in SHIPPED:
        return spec
    names = [spec] if spec else (["accurate", "fast"] if device.type == "cuda" else ["fast"])
    for name in names:
        path = os.path.join(WEIGHTS_DIR, SHIPPED[name])
        if os.path.isfile(path):
            return path
    raise missing_weights(names[-1])


class HandNetwork:
    """A HAMR network ready for inference: ``predict(crops) -> dict of numpy arrays``."""

    def __init__(self, weights: str, device: torch.device, threads: int = 0):
        if device.type == "cpu" and threads:
            torch.set_num_threads(threads)
        try:
            self.model, self.config = load_weights(weights, device="cpu")
        except Exception as e:   # safetensors, JSON and shape errors alike: the file is not usable weights
            raise EngineError(f"--weights {weights}: not a handcap weights file ({type(e).__name__}: {e})") from None
        if self.config.arch != "hamr":
            raise EngineError(f"{weights}: a {self.config.arch} network; the engine needs a HAMR network "
                              "(it outputs the hand model's pose and shape)")
        self.weights, self.device = weights, device
        # channels-last convolutions: faster on both (measured 1.45x on one CPU core at 96 px)
        self.model = self.model.float().to(device).eval().to(memory_format=torch.channels_last)
        self.amp = device.type == "cuda"
        self.input_size = self.config.input_size

    @torch.inference_mode()
    def predict(self, crops: np.ndarray, batch_size: int = 64) -> dict:
        """(N, S, S, 3) uint8 RGB right-hand crops -> numpy float32 arrays:

        pose (N, 16, 3) axis-angle radians (camera axes), betas (N, B), camera (N, 3) weak perspective,
        joints_3d (N, 21, 3) root-relative metres, keypoints_2d (N, 21, 2) projected, normalised crop
        coordinates, heatmap_keypoints (N, 21, 2) the same from the heatmaps, heatmap_confidence (N, 21).
        """
        outputs = []
        for start in range(0, len(crops), batch_size):
            images = normalize_image(torch.from_numpy(crops[start:start + batch_size])).to(self.device)
            images = images.contiguous(memory_format=torch.channels_last)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                out = self.model(images)
            part = {"pose": matrix_to_axis_angle(out["rotmats"].float()), "betas": out["betas"],
                    "camera": out["camera"], "joints_3d": out["joints_3d"], "keypoints_2d": out["keypoints_2d"]}
            if out["heatmaps"]:
                part["heatmap_keypoints"], part["heatmap_confidence"] = keypoints_from_heatmaps(out["heatmaps"][-1])
            outputs.append({k: v.float().cpu().numpy() for k, v in part.items()})
        return {k: np.concatenate([o[k] for o in outputs]) for k in outputs[0]} if outputs else {}
