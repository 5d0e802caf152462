"""Square hand crops: the one geometry shared by training (augment) and the engine.

A crop box is a square of ``side`` pixels centred on ``centre`` in the source image. One affine
map, source pixels -> crop pixels (pixel centres at integers in both), does everything geometric:

    p' = (size / side) * R(angle) @ F @ (p - centre) + (size - 1) / 2,     F = diag(-1, 1) if flipped

Crop keypoints are then normalised to [-1, 1] ((p' + 0.5) * 2 / size - 1: -1/+1 are the crop's
edges), the network's 2D coordinates. Images are normalised as the network declares
(``NetworkConfig.input_normalization``): "imagenet" (IMAGE_MEAN / IMAGE_STD, the ResNets) or "unit"
(RGB in [0, 1], MediaPipe's landmark network).
A box around a hand is ``CROP_MARGIN`` x the longer side of its keypoints' bounding box. Networks on
MediaPipe's landmark trunk see upright crops (``upright_angle``: wrist below the middle knuckle, as
MediaPipe's own hand crops), the others axis-aligned ones.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)
CROP_MARGIN = 1.5


def keypoint_box(keypoints_2d: np.ndarray, margin: float = CROP_MARGIN) -> tuple[np.ndarray, float]:
    """(N, 2) pixels -> (centre (2,), side): the square around their bounding box, ``margin`` x its longer side."""
    low, high = keypoints_2d.min(0), keypoints_2d.max(0)
    return (low + high) / 2.0, max(float((high - low).max()) * margin, 1.0)


def in_plane_linear(angle: float, flip: bool) -> np.ndarray:
    """(3, 3) L3 = [[R(angle) @ F, 0], [0, 1]]: the crop's linear map on camera-space vectors."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ np.diag([-1.0 if flip else 1.0, 1.0, 1.0])


def upright_angle(keypoints_2d: np.ndarray, flip: bool = False) -> float:
    """(21, 2) source pixels (FreiHAND order) -> the ``crop_matrix`` angle, radians, that turns the
    wrist -> middle-MCP direction straight up in the crop (after the flip, when ``flip``)."""
    direction = np.asarray(keypoints_2d[9], np.float64) - np.asarray(keypoints_2d[0], np.float64)
    if flip:
        direction[0] = -direction[0]
    return float(-math.pi / 2 - math.atan2(direction[1], direction[0]))


def crop_matrix(centre: np.ndarray, side: float, size: int, angle: float = 0.0, flip: bool = False) -> np.ndarray:
    """(2, 3) affine map source pixels -> crop pixels (see the module docstring); angle in radians."""
    linear = in_plane_linear(angle, flip)[:2, :2] * (size / side)
    return np.concatenate([linear, ((size - 1) / 2.0 - linear @ np.asarray(centre, np.float64))[:, None]], axis=1)


def normalize_keypoints(pixels: np.ndarray, size: int) -> np.ndarray:
    """Crop pixels (centres at integers) -> [-1, 1] with -1/+1 at the crop's edges."""
    return (pixels + 0.5) * (2.0 / size) - 1.0


def crop_to_source(normalized: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """(..., 2) normalised crop coordinates -> source pixels, inverting ``crop_matrix``'s ``matrix``."""
    pixels = (np.asarray(normalized, np.float64) + 1.0) * (size / 2.0) - 0.5
    inverse = cv2.invertAffineTransform(matrix)
    return pixels @ inverse[:, :2].T + inverse[:, 2]


def cut_crop(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (size, size, 3) uint8 through ``matrix`` (bilinear; black outside)."""
    return cv2.warpAffine(np.ascontiguousarray(image), matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def normalize_image(rgb: np.ndarray | torch.Tensor, normalization: str = "imagenet") -> torch.Tensor:
    """(..., H, W, 3) uint8 RGB -> (..., 3, H, W) float32 network input: "imagenet" (IMAGE_MEAN /
    IMAGE_STD) or "unit" (values in [0, 1])."""
    pixels = torch.as_tensor(rgb).movedim(-1, -3).float() / 255.0
    if normalization == "unit":
        return pixels
    if normalization != "imagenet":
        raise ValueError(f"normalization must be 'imagenet' or 'unit', not {normalization!r}")
    mean = torch.tensor(IMAGE_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGE_STD).view(3, 1, 1)
    return (pixels - mean) / std
