"""The weak-perspective camera of training/sample.py: ``keypoints_2d = s * xy + (tx, ty)``.

``xy`` are root-relative metres (camera axes), ``keypoints_2d`` normalised crop coordinates
in [-1, 1] (-1 = left/top edge of the crop).
"""

from __future__ import annotations

import torch

HAND_FILL = 0.7
"""Fraction of the crop side that a hand's 2D keypoint box is assumed to cover at initialisation."""
HAND_LENGTH = 0.19
"""Metres from wrist to middle fingertip of an adult hand (the open template: 0.193)."""


def project(points: torch.Tensor, camera: torch.Tensor) -> torch.Tensor:
    """(B, N, 3) root-relative metres, (B, 3) cameras (s, tx, ty) -> (B, N, 2) crop coordinates."""
    return camera[:, None, :1] * points[..., :2] + camera[:, None, 1:]


def framing_camera(points: torch.Tensor, fill: float = HAND_FILL) -> torch.Tensor:
    """(N, 3) points -> (3,) camera that centres their xy box in the crop, longer side = ``fill``."""
    low, high = points[:, :2].min(0).values, points[:, :2].max(0).values
    s = 2.0 * fill / (high - low).max()
    return torch.cat([s.reshape(1), -s * (low + high) / 2])
