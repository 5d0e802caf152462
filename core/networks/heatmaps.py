"""2D keypoint heatmaps: Gaussian targets and keypoint decoding, in one coordinate convention.

Normalised crop coordinates (training/sample.py): x, y in [-1, 1], -1 = left/top edge, +1 =
right/bottom edge. Heatmap pixel ``i`` of ``n`` covers [-1 + 2i/n, -1 + 2(i+1)/n]: its centre is
at ``(2i + 1) / n - 1``. A keypoint is the peak of a Gaussian of peak value 1 (MSE-trained).
"""

from __future__ import annotations

import torch


def pixel_centres(n: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """(n,) normalised coordinates of the centres of n heatmap pixels."""
    return (2 * torch.arange(n, device=device, dtype=dtype) + 1) / n - 1


def render_heatmaps(keypoints_2d: torch.Tensor, size: int, sigma: float = 1.5) -> torch.Tensor:
    """(B, K, 2) normalised coordinates -> (B, K, size, size) Gaussians of peak 1.

    ``sigma`` is in heatmap pixels. Keypoints outside the crop give (partial or empty) Gaussians.
    """
    centres = pixel_centres(size, keypoints_2d.device, keypoints_2d.dtype)
    scale = (size / 2) ** 2 / (2 * sigma ** 2)  # normalised distance^2 -> Gaussian exponent
    dx2 = (centres - keypoints_2d[..., :1]) ** 2             # (B, K, size) along x
    dy2 = (centres - keypoints_2d[..., 1:]) ** 2             # (B, K, size) along y
    return torch.exp(-scale * (dy2[..., :, None] + dx2[..., None, :]))


def keypoints_from_heatmaps(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, K, h, w) heatmaps -> keypoints (B, K, 2) normalised crop coordinates, confidence (B, K).

    Argmax, refined to sub-pixel by a parabola through the log values at the peak and its two
    neighbours on each axis (exact for a Gaussian; no refinement at the border or on a flat
    peak). Confidence is the peak value (about 1 for a sure keypoint, 0 for none). Float32 out.
    """
    heatmaps = heatmaps.float()
    B, K, h, w = heatmaps.shape
    flat = heatmaps.reshape(B, K, h * w)
    confidence, index = flat.max(-1)
    y, x = index // w, index % w

    def offset(along_x: bool) -> torch.Tensor:
        pos, n, step = (x, w, 1) if along_x else (y, h, w)
        inside = (pos > 0) & (pos < n - 1)
        lo = flat.gather(-1, (index - step * inside).unsqueeze(-1)).squeeze(-1)
        hi = flat.gather(-1, (index + step * inside).unsqueeze(-1)).squeeze(-1)
        logs = [torch.log(v.clamp_min(1e-10)) for v in (lo, confidence, hi)]
        curvature = logs[0] - 2 * logs[1] + logs[2]
        valid = inside & (curvature < 0)
        delta = 0.5 * (logs[0] - logs[2]) / torch.where(valid, curvature, torch.ones_like(curvature))
        return torch.where(valid, delta.clamp(-0.5, 0.5), torch.zeros_like(delta))

    u = x.float() + offset(True)
    v = y.float() + offset(False)
    keypoints = torch.stack([(2 * u + 1) / w - 1, (2 * v + 1) / h - 1], dim=-1)
    return keypoints, confidence
