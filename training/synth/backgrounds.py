"""Backgrounds and occluders for synthetic hands: procedural textures, clutter, user photos.

All images are float32 (H, W, 3) RGB in [0, 1]. Procedural families differ between the
``train`` and ``heldout`` styles, so a held-out set never shows a background kind seen in
training; a user folder of photos (``backgrounds=DIR``) is used by both when given.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """(size, size, 3) value noise: random colours on a coarse grid, bicubically upsampled."""
    grid = rng.random((cells, cells, 3)).astype(np.float32)
    return np.clip(cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC), 0, 1)


def gradient(rng: np.random.Generator, size: int) -> np.ndarray:
    """A linear two-colour gradient in a random direction (drawn at 16 px, then resized)."""
    a, b = rng.random(3, dtype=np.float32), rng.random(3, dtype=np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    u = np.linspace(-1, 1, 16, dtype=np.float32)
    t = (np.cos(angle) * u[None, :] + np.sin(angle) * u[:, None] + 1.5) / 3.0
    small = a * (1 - t[..., None]) + b * t[..., None]
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)


def stripes(rng: np.random.Generator, size: int) -> np.ndarray:
    """Stripes or a checkerboard under a random perspective warp (floors, shelves, fabric)."""
    period = rng.uniform(6, 40)
    phase = (np.arange(size, dtype=np.float32) / period).astype(np.int64) % 2 == 1   # (size,) bands
    pattern = np.broadcast_to(phase[None, :], (size, size))
    if rng.random() < 0.5:
        pattern = pattern ^ phase[:, None]
    a, b = rng.random(3, dtype=np.float32), rng.random(3, dtype=np.float32)
    image = np.where(pattern[..., None], a, b).astype(np.float32)
    src = np.float32([[0, 0], [size, 0], [size, size], [0, size]])
    dst = src + rng.uniform(-0.3, 0.3, (4, 2)).astype(np.float32) * size
    warp = cv2.getPerspectiveTransform(src, dst)
    return cv2.warpPerspective(image, warp, (size, size), borderMode=cv2.BORDER_REFLECT)


def clutter(rng: np.random.Generator, size: int, base: np.ndarray, count: int) -> np.ndarray:
    """Random filled ellipses and polygons on ``base`` (desks, objects, people's clothes)."""
    image = base.copy()
    for _ in range(count):
        color = tuple(float(c) for c in rng.random(3))
        if rng.random() < 0.5:
            centre = tuple(int(c) for c in rng.integers(0, size, 2))
            axes = tuple(int(a) for a in rng.integers(size // 20, size // 3, 2))
            cv2.ellipse(image, centre, axes, float(rng.uniform(0, 180)), 0, 360, color, -1)
        else:
            points = rng.integers(-size // 4, size + size // 4, (int(rng.integers(3, 7)), 2)).astype(np.int32)
            cv2.fillPoly(image, [points], color)
    return image


class Backgrounds:
    """``sample(rng) -> (size, size, 3)``: a background in this style, or a user photo."""

    def __init__(self, size: int, style: str = "train", folder: str = None):
        self.size, self.style = size, style
        self.photos = []
        if folder:
            if not os.path.isdir(folder):
                raise ValueError(f"backgrounds: {folder} is not a folder")
            self.photos = sorted(os.path.join(folder, f) for f in os.listdir(folder)
                                 if f.lower().endswith(IMAGE_EXTENSIONS))
            if not self.photos:
                raise ValueError(f"backgrounds: no images in {folder}")

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        if self.photos and rng.random() < 0.5:
            return self._photo(rng)
        size = self.size
        if self.style == "train":
            kind = rng.integers(4)
            base = [smooth_noise(rng, size, int(rng.integers(2, 24))), gradient(rng, size), stripes(rng, size),
                    smooth_noise(rng, size, 3)][kind]
            image = clutter(rng, size, base, int(rng.integers(0, 12)))
        else:  # held-out families: high-frequency noise, and blurred clutter over gradients
            if rng.random() < 0.5:
                image = np.clip(smooth_noise(rng, size, int(rng.integers(32, 64))) * 0.6 + gradient(rng, size) * 0.4, 0, 1)
            else:
                image = clutter(rng, size, gradient(rng, size), int(rng.integers(12, 30)))
        if rng.random() < 0.5:
            image = cv2.GaussianBlur(image, (0, 0), float(rng.uniform(0.5, 3.0)))
        return image.astype(np.float32)

    def _photo(self, rng: np.random.Generator) -> np.ndarray:
        image = cv2.imread(self.photos[int(rng.integers(len(self.photos)))], cv2.IMREAD_COLOR)
        if image is None:
            return gradient(rng, self.size)
        h, w = image.shape[:2]
        side = int(min(h, w) * rng.uniform(0.4, 1.0))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = cv2.resize(image[y:y + side, x:x + side], (self.size, self.size), interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


def occluder_mask(rng: np.random.Generator, size: int, box: tuple) -> np.ndarray:
    """(size, size) float32 {0, 1}: one ellipse or polygon overlapping the hand box (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    mask = np.zeros((size, size), np.float32)
    w, h = max(x1 - x0, 4), max(y1 - y0, 4)
    centre = (int(rng.uniform(x0, x1)), int(rng.uniform(y0, y1)))
    if rng.random() < 0.5:
        axes = (int(w * rng.uniform(0.1, 0.35)), int(h * rng.uniform(0.1, 0.35)))
        cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
    else:
        radius = 0.3 * max(w, h)
        angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 7))))
        points = np.stack([centre[0] + radius * rng.uniform(0.3, 1, len(angles)) * np.cos(angles),
                           centre[1] + radius * rng.uniform(0.3, 1, len(angles)) * np.sin(angles)], 1)
        cv2.fillPoly(mask, [points.astype(np.int32)], 1.0)
    return mask
