"""Helpers shared by the dataset readers: image/mask reading and raw-sample assembly."""

from __future__ import annotations

import functools

import cv2
import numpy as np
import torch

from core.hand_model import NUM_JOINTS


@functools.lru_cache(maxsize=1)
def open_hand_vertex_count() -> int:
    """V of the open hand model: the length of ``vertices`` in every raw sample."""
    from core.hand_model import load_hand_model
    return load_hand_model("open").num_vertices


def read_rgb(path: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB; raises FileNotFoundError when the file cannot be read."""
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_gray(path: str) -> np.ndarray:
    """(H, W) uint8 as stored (no scaling), for masks and label maps."""
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise FileNotFoundError(f"cannot read mask {path}")
    return image if image.ndim == 2 else image[..., 0]


def project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(N, 3) camera-space points, (3, 3) intrinsics -> (N, 2) pixels (pixel centres at integers)."""
    uvw = points @ K.T
    return uvw[:, :2] / uvw[:, 2:3]


def raw_sample(image: np.ndarray, K: np.ndarray, keypoints_2d: np.ndarray, joints_3d: np.ndarray, *,
               mask: np.ndarray = None, vertices: np.ndarray = None, pose: np.ndarray = None,
               betas: np.ndarray = None, is_left: bool = False, has_3d: bool = True) -> dict:
    """Assemble a raw sample (see training/sample.py) from numpy arrays.

    image (H, W, 3) uint8 RGB; mask (H, W) bool/uint8 hand = nonzero, or None (has_mask False);
    vertices (V, 3) metres or None (has_mesh False, zeros); pose (16, 3) / betas (10,) or None (zeros).
    """
    height, width = image.shape[:2]
    has_mesh = vertices is not None
    return {
        "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
        "mask": torch.from_numpy((mask > 0).astype(np.uint8) if mask is not None else np.zeros((height, width), np.uint8)),
        "keypoints_2d": torch.as_tensor(keypoints_2d, dtype=torch.float32),
        "joints_3d": torch.as_tensor(joints_3d, dtype=torch.float32),
        "vertices": torch.as_tensor(vertices, dtype=torch.float32) if has_mesh
        else torch.zeros(open_hand_vertex_count(), 3),
        "pose": torch.as_tensor(pose, dtype=torch.float32).reshape(NUM_JOINTS, 3) if pose is not None
        else torch.zeros(NUM_JOINTS, 3),
        "betas": torch.as_tensor(betas, dtype=torch.float32) if betas is not None else torch.zeros(10),
        "K": torch.as_tensor(K, dtype=torch.float32),
        "is_left": torch.tensor(bool(is_left)),
        "has_mask": torch.tensor(mask is not None),
        "has_3d": torch.tensor(bool(has_3d)),
        "has_mesh": torch.tensor(has_mesh),
    }
