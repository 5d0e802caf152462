"""The hand network as the engine runs it: shipped weights, device, threads, batched crops.

Shipped weights live in ``core/weights/`` (half-precision safetensors): ``hamr_trunk`` (the default:
HAMR's head on MediaPipe's frozen hand-landmark network, 224 px crops in [0, 1], cut as MediaPipe's
hand regions by the engine, which reuses the detector's pass over the same crop when there is one;
the trunk's weights come from core/perception/weights), ``hamr_fast`` (ResNet-18 from scratch, 96 px, kept for
comparison) and ``hamr_accurate`` (larger, for a GPU) when it exists. Each network declares its crops:
input size, normalisation and whether it wants them turned upright (``NetworkConfig``).
"""

from __future__ import annotations

import os
from typing import Optional

import numpy as np
import torch

from core.crops import in_plane_linear, normalize_image
from core.hand_model.rotations import matrix_to_axis_angle
from core.networks import keypoints_from_heatmaps, load_weights

from .shipped import DEFAULT_ORDER, SHIPPED, WEIGHTS_DIR, EngineError, check_weights, missing_weights  # noqa: F401


def resolve_device(setting: str) -> torch.device:
    """'auto' | 'cpu' | 'cuda' -> a torch device (auto: the GPU when there is one)."""
    if setting == "cuda" and not torch.cuda.is_available():
        raise EngineError("--device cuda: no CUDA GPU is available to this Python")
    if setting not in ("auto", "cpu", "cuda"):
        raise EngineError(f"--device must be auto, cpu or cuda, not {setting!r}")
    return torch.device("cuda" if setting != "cpu" and torch.cuda.is_available() else "cpu")


def resolve_weights(spec: Optional[str], device: torch.device) -> str:
    """A weights path from --weights: a file, a name in SHIPPED ('trunk', 'fast', 'accurate'), or None
    (the first shipped of DEFAULT_ORDER for the device: trunk)."""
    check_weights(spec)
    if spec and spec not in SHIPPED:
        return spec
    names = [spec] if spec else list(DEFAULT_ORDER["cuda" if device.type == "cuda" else "cpu"])
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
        self.normalization = self.config.input_normalization
        self.upright = self.config.upright_crops   # crops turned by core.crops.upright_angle; see predict
        # the landmark model's variant when the network's trunk is MediaPipe's landmark model (its crops are
        # then MediaPipe's hand regions, and a detector's pass over the same crop can stand in for the trunk)
        self.trunk_variant = self.model.trunk.net.variant if self.config.pretrained_trunk else None

    @torch.inference_mode()
    def predict(self, crops: np.ndarray, batch_size: int = 64, angles: Optional[np.ndarray] = None,
                seen: Optional[list] = None) -> dict:
        """(N, S, S, 3) uint8 RGB right-hand crops -> numpy float32 arrays:

        pose (N, 16, 3) axis-angle radians (camera axes), betas (N, B), camera (N, 3) weak perspective,
        joints_3d (N, 21, 3) root-relative metres, keypoints_2d (N, 21, 2) projected, normalised crop
        coordinates, heatmap_keypoints (N, 21, 2) the same from the heatmaps (or the landmark trunk's
        own 2D landmarks), heatmap_confidence (N, 21).

        angles (N,) radians: the in-plane angle each crop was cut at (core.crops.crop_matrix, e.g.
        upright_angle for an upright-crop network); every output is turned back into the frame of
        the same crop cut at angle 0, so callers work in axis-aligned crops whatever the network saw.

        seen (N,): for a network on the landmark trunk, per crop the landmark model's pass over that same
        crop (core.perception.hand_landmarker.LandmarkPass) or None; the trunk runs only where it is None.
        """
        outputs = []
        for start in range(0, len(crops), batch_size):
            part_seen = seen[start:start + batch_size] if seen is not None else None
            inputs = (self._trunk_outputs(crops[start:start + batch_size], part_seen)
                      if self.trunk_variant is not None else self._images(crops[start:start + batch_size]))
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                out = self.model(inputs)
            part = {"pose": matrix_to_axis_angle(out["rotmats"].float()), "betas": out["betas"],
                    "camera": out["camera"], "joints_3d": out["joints_3d"], "keypoints_2d": out["keypoints_2d"]}
            if out["heatmaps"]:
                part["heatmap_keypoints"], part["heatmap_confidence"] = keypoints_from_heatmaps(out["heatmaps"][-1])
            elif "landmarks_2d" in out:
                part["heatmap_keypoints"] = out["landmarks_2d"]
                part["heatmap_confidence"] = out["presence"][:, None].expand(-1, out["landmarks_2d"].shape[1])
            outputs.append({k: v.float().cpu().numpy() for k, v in part.items()})
        result = {k: np.concatenate([o[k] for o in outputs]) for k in outputs[0]} if outputs else {}
        return unrotate(result, angles) if angles is not None and result else result

    def _images(self, crops: np.ndarray) -> torch.Tensor:
        """(B, S, S, 3) uint8 -> the network's normalised input on its device, channels-last."""
        images = normalize_image(torch.from_numpy(crops), self.normalization).to(self.device)
        return images.contiguous(memory_format=torch.channels_last)

    def _trunk_outputs(self, crops: np.ndarray, seen: Optional[list]) -> dict:
        """The landmark trunk's outputs (B rows) for crops (B, 224, 224, 3) uint8: from ``seen[i]`` where
        given, else from the trunk run on the other crops in one batch."""
        trunk = self.model.trunk
        fresh = [i for i in range(len(crops)) if seen is None or seen[i] is None]
        rows = [None] * len(crops)
        if fresh:
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                out = trunk(self._images(crops[fresh]))
            for n, i in enumerate(fresh):
                rows[i] = {k: v[n:n + 1].float() for k, v in out.items()}
        for i in range(len(crops)):
            if rows[i] is None:
                rows[i] = {k: v.to(self.device) for k, v in trunk.outputs_from_pass(seen[i]).items()}
        return {k: torch.cat([r[k] for r in rows]) for k in rows[0]}


def unrotate(out: dict, angles: np.ndarray) -> dict:
    """Outputs of crops cut at ``angles`` (N,) radians -> the same in the crops cut at angle 0.

    A crop at angle a is the axis-aligned crop turned by R(a) about its centre (core.crops.crop_matrix),
    2D normalised coordinates and camera xy included; 3D turns by L3 = [[R(a), 0], [0, 1]] about the
    camera axis. So points go back by R(a)^T, the camera's (tx, ty) too (its scale stays), and the
    global orientation (pose[:, 0]) is pre-multiplied by L3^T."""
    import cv2
    out = dict(out)
    linear = np.stack([in_plane_linear(float(a), False) for a in np.asarray(angles, np.float64)])   # (N, 3, 3)
    back = linear.transpose(0, 2, 1).astype(np.float32)                                            # L3^T
    out["joints_3d"] = np.einsum("nij,nkj->nki", back, out["joints_3d"]).astype(np.float32)
    for key in ("keypoints_2d", "heatmap_keypoints"):
        if key in out:
            out[key] = np.einsum("nij,nkj->nki", back[:, :2, :2], out[key]).astype(np.float32)
    camera = out["camera"].copy()
    camera[:, 1:] = np.einsum("nij,nj->ni", back[:, :2, :2], camera[:, 1:])
    out["camera"] = camera
    pose = out["pose"].copy()
    for i in range(len(pose)):
        root = back[i].astype(np.float64) @ cv2.Rodrigues(pose[i, 0].astype(np.float64))[0]
        pose[i, 0] = cv2.Rodrigues(root)[0][:, 0]
    out["pose"] = pose
    return out
