"""Network inputs cut from a photo as MediaPipe's ImageToTensorCalculator cuts them (CPU path).

A region is first padded to the input's aspect ratio (keep_aspect_ratio: the letterbox, whose
fractions are returned so that results can be mapped back), then its four corners (OpenCV's
``boxPoints`` of the turned rectangle) are mapped onto the input's corners (0 and size, not
size - 1) by a perspective transform, and the uint8 image is resampled bilinearly (border: zeros
for the palm detector's letterbox, replicated edge pixels for the landmark model's crops); a
mirrored region's input is then flipped left-right.
Values become floats in the network's range afterwards (``to_network_input``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math

import cv2
import numpy as np
import torch

from .regions import Region

BORDER_ZERO, BORDER_REPLICATE = cv2.BORDER_CONSTANT, cv2.BORDER_REPLICATE


def pad_to_square(region: Region) -> tuple[Region, np.ndarray]:
    """A region grown to a square input's aspect ratio, and the padding (4,) left, top, right, bottom
    as fractions of the grown region (MediaPipe's letterbox)."""
    aspect = region.height / region.width
    if aspect < 1.0:
        pad = (1.0 - aspect) / 2.0
        return dataclasses.replace(region, height=region.width), np.array([0.0, pad, 0.0, pad])
    pad = (1.0 - 1.0 / aspect) / 2.0
    return dataclasses.replace(region, width=region.height), np.array([pad, 0.0, pad, 0.0])


def region_matrix(region: Region, size: int) -> np.ndarray:
    """(3, 3) perspective map image pixels -> input pixels of a ``size`` square input showing ``region``."""
    corners = cv2.boxPoints(((region.cx, region.cy), (region.width, region.height), math.degrees(region.rotation)))
    target = np.array([[0, size], [0, 0], [size, 0], [size, size]], np.float32)
    return cv2.getPerspectiveTransform(corners.astype(np.float32), target)


def as_mediapipe_roi(region: Region, width: int, height: int) -> Region:
    """A region as MediaPipe holds it: fractions of the image in float32, then pixels in float32 (the
    crops then match MediaPipe's to the sampling grid, which a region's last bits can move)."""
    f32 = np.float32
    w, h = f32(width), f32(height)
    return Region(float(f32(f32(region.cx / width) * w)), float(f32(f32(region.cy / height) * h)),
                  float(f32(f32(region.width / width) * w)), float(f32(f32(region.height / height) * h)),
                  float(f32(region.rotation)), region.mirrored)


def cut_regions(rgb: np.ndarray, regions: list[Region], size: int, border: int = BORDER_REPLICATE
                ) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 -> ((N, size, size, 3) uint8 inputs, (N, 4) letterbox paddings), one per region
    (a mirrored region's input flipped left-right; its letterbox is symmetric, so the padding holds)."""
    crops = np.empty((len(regions), size, size, 3), np.uint8)
    paddings = np.empty((len(regions), 4))
    for i, region in enumerate(regions):
        square, paddings[i] = pad_to_square(as_mediapipe_roi(region, rgb.shape[1], rgb.shape[0]))
        cv2.warpPerspective(rgb, region_matrix(square, size), (size, size), dst=crops[i],
                            flags=cv2.INTER_LINEAR, borderMode=border, borderValue=(0, 0, 0))
        if region.mirrored:
            crops[i] = crops[i][:, ::-1]
    return crops, paddings


def whole_image(rgb: np.ndarray) -> Region:
    """The region of a whole (H, W, 3) image, unturned."""
    height, width = rgb.shape[:2]
    return Region(width / 2.0, height / 2.0, float(width), float(height), 0.0)


def to_network_input(crops: np.ndarray, value_range: tuple[float, float], device) -> torch.Tensor:
    """(N, S, S, 3) uint8 -> (N, 3, S, S) float32 in ``value_range`` on ``device``, channels-last."""
    low, high = value_range
    images = torch.from_numpy(crops).to(device, non_blocking=True).permute(0, 3, 1, 2)   # NCHW view, NHWC memory
    return images.float().mul_((high - low) / 255.0).add_(low).contiguous(memory_format=torch.channels_last)


def remove_letterbox(points: np.ndarray, padding: np.ndarray) -> np.ndarray:
    """(..., 2) fractions of a padded input -> fractions of the region inside the padding."""
    left, top, right, bottom = padding
    return np.stack([(points[..., 0] - left) / (1.0 - left - right),
                     (points[..., 1] - top) / (1.0 - top - bottom)], axis=-1)


def exact_float32(device: torch.device):
    """A context in which convolutions on ``device`` run in true float32: cuDNN's TF32 (on by default
    on Ampere and later GPUs) is turned off inside it, as the hand networks' landmarks move by more
    than MediaPipe's tolerance at reduced precision (bf16: 0.67 crop pixels on average, up to 3.4)."""
    if torch.device(device).type != "cuda":
        return contextlib.nullcontext()
    return torch.backends.cudnn.flags(enabled=torch.backends.cudnn.enabled, benchmark=torch.backends.cudnn.benchmark,
                                      deterministic=torch.backends.cudnn.deterministic, allow_tf32=False)
