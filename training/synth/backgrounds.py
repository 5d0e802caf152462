"""Backgrounds for synthetic hands: procedural textures and clutter, and photos from a folder.

Backgrounds are uint8 (S, S, 3) sRGB (procedural families draw in float32 [0, 1]). The procedural families differ between styles, so
the held-out set never shows a background family seen in training:

  train    fractal noise, gradients, stripes/checkers/grids in perspective, clutter of shapes
  heldout  cells (Voronoi tiles), marble/wood veins, bokeh (blurred light discs)

Generating a texture costs more than rendering a hand, so textures come from a pool: sample i
picks one of ``POOL`` textures of its generation (``i // GENERATION`` ; each generation draws
new ones) and shows it flipped, rotated, zoomed and recoloured at random. A texture is a function
of (seed, split, generation, slot) only, so samples stay reproducible however work is split.

A user folder of photos (``folder=DIR``, searched recursively for .jpg/.png/...) serves both
styles, half the time, seen the same way (random crop, flip, turn, recolouring).
The last ``PHOTO_CACHE`` decoded photos are kept (uint8, downscaled to what the crops need).
"""

from __future__ import annotations

import functools
import os

import cv2
import numpy as np

from .scene import SPLITS

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
PHOTO_CACHE = 32
PHOTO_PROBABILITY = 0.5
POOL = 256          # textures per generation
GENERATION = 8192   # samples per generation
TEXTURE_STREAM = 2_000_003


def random_colours(rng: np.random.Generator, count: int) -> np.ndarray:
    """(count, 3) float32 sRGB colours, mostly muted like real scenes: hue uniform, saturation
    skewed low, value 0.1-1."""
    hsv = np.stack([rng.uniform(0, 360, count), rng.random(count) ** 1.7 * 0.9, rng.uniform(0.1, 1.0, count)], 1)
    return cv2.cvtColor(hsv.astype(np.float32)[None], cv2.COLOR_HSV2RGB)[0]


def palette_map(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """(H, W) values in [0, 1] -> (H, W, 3) float32 colours along a random 2-4 colour ramp."""
    count = int(rng.integers(2, 5))
    colours = random_colours(rng, count)
    ramp = np.stack([np.interp(np.linspace(0, count - 1, 256), np.arange(count), colours[:, c]) for c in range(3)], 1)
    index = np.clip(t * 255 + 0.5, 0, 255).astype(np.uint8)
    table = np.round(ramp * 255).astype(np.uint8).reshape(256, 1, 3)
    return cv2.LUT(cv2.merge([index, index, index]), table).astype(np.float32) * (1 / 255)


def fractal_noise(rng: np.random.Generator, size: int, cells: int, octaves: int = 4) -> np.ndarray:
    """(size, size) float32 value noise in [0, 1]: octaves of bicubically upsampled random grids."""
    total = np.zeros((size, size), np.float32)
    amplitude = 1.0
    for _ in range(octaves):
        grid = rng.random((cells, cells), dtype=np.float32)
        total += amplitude * cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
        amplitude, cells = amplitude * 0.5, min(cells * 2, size)
    total -= total.min()
    return total / max(float(total.max()), 1e-6)


def coordinates(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(size, size) x and y in [-1, 1]."""
    u = np.linspace(-1, 1, size, dtype=np.float32)
    return np.broadcast_to(u[None, :], (size, size)), np.broadcast_to(u[:, None], (size, size))


def noise(rng: np.random.Generator, size: int) -> np.ndarray:
    return palette_map(rng, fractal_noise(rng, size, int(rng.integers(2, 12))))


def gradient(rng: np.random.Generator, size: int) -> np.ndarray:
    """Linear or radial ramp with faint noise (walls, sky, studio backdrops)."""
    x, y = coordinates(size)
    if rng.random() < 0.5:
        angle = rng.uniform(0, 2 * np.pi)
        t = (np.cos(angle) * x + np.sin(angle) * y) * 0.5 * rng.uniform(0.5, 1.5) + 0.5
    else:
        cx, cy = rng.uniform(-1, 1, 2)
        t = np.sqrt((x - cx) ** 2 + (y - cy) ** 2) * rng.uniform(0.3, 1.0)
    return palette_map(rng, t + 0.05 * (fractal_noise(rng, size, 8) - 0.5))


def perspective(rng: np.random.Generator, image: np.ndarray, strength: float = 0.35) -> np.ndarray:
    """``image`` under a random homography (a plane seen at an angle), reflected at the borders."""
    size = image.shape[0]
    src = np.float32([[0, 0], [size, 0], [size, size], [0, size]])
    dst = src + rng.uniform(-strength, strength, (4, 2)).astype(np.float32) * size
    return cv2.warpPerspective(image, cv2.getPerspectiveTransform(src, dst), (size, size),
                               borderMode=cv2.BORDER_REFLECT)


def stripes(rng: np.random.Generator, size: int) -> np.ndarray:
    """Stripes, a checkerboard or a grid of lines, in perspective (floors, tiles, fabric, shelves)."""
    x, y = coordinates(size)
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(0.05, 0.5)
    u = (np.cos(angle) * x + np.sin(angle) * y) / period
    v = (-np.sin(angle) * x + np.cos(angle) * y) / period
    kind = rng.integers(3)
    if kind == 0:
        t = np.floor(u) % 2
    elif kind == 1:
        t = (np.floor(u) + np.floor(v)) % 2
    else:
        width = rng.uniform(0.05, 0.3)
        t = (np.abs(u - np.round(u)) < width / 2) | (np.abs(v - np.round(v)) < width / 2)
    colours = random_colours(rng, 2)
    image = colours[0] + t.astype(np.float32)[..., None] * (colours[1] - colours[0])
    return perspective(rng, image)


def draw_shapes(rng: np.random.Generator, image: np.ndarray, count: int) -> np.ndarray:
    """Filled ellipses, polygons, rectangles and thick lines in random colours, drawn over ``image``."""
    size = image.shape[0]
    for colour in random_colours(rng, count):
        colour = tuple(float(c) for c in colour)
        kind = rng.integers(4)
        centre = rng.uniform(-0.1, 1.1, 2) * size
        extent = size * rng.uniform(0.05, 0.5)
        if kind == 0:
            axes = (int(extent), int(extent * rng.uniform(0.2, 1.0)))
            cv2.ellipse(image, tuple(int(c) for c in centre), axes, rng.uniform(0, 180), 0, 360, colour, -1, cv2.LINE_AA)
        elif kind == 1:
            angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 8))))
            radii = extent * rng.uniform(0.4, 1.0, len(angles))
            points = centre + np.stack([np.cos(angles), np.sin(angles)], 1) * radii[:, None]
            cv2.fillPoly(image, [np.round(points * 4).astype(np.int32)], colour, cv2.LINE_AA, shift=2)
        elif kind == 2:
            box = ((float(centre[0]), float(centre[1])), (float(extent), float(extent * rng.uniform(0.2, 1.5))),
                   float(rng.uniform(0, 180)))
            cv2.fillPoly(image, [np.round(cv2.boxPoints(box) * 4).astype(np.int32)], colour, cv2.LINE_AA, shift=2)
        else:
            end = centre + rng.normal(0, 1, 2) * extent
            cv2.line(image, tuple(int(c) for c in centre), tuple(int(c) for c in end), colour,
                     int(rng.integers(1, max(2, size // 25))), cv2.LINE_AA)
    return image


def clutter(rng: np.random.Generator, size: int) -> np.ndarray:
    """Shapes over noise or a gradient (desks, rooms, objects, clothes)."""
    base = noise(rng, size) if rng.random() < 0.5 else gradient(rng, size)
    return draw_shapes(rng, np.ascontiguousarray(base), int(rng.integers(4, 30)))


def cells(rng: np.random.Generator, size: int) -> np.ndarray:
    """Voronoi tiles in random colours with dark seams (stone walls, mosaics)."""
    count = int(rng.integers(6, 80))
    seeds = np.full((size, size), 255, np.uint8)
    points = rng.integers(0, size, (count, 2))
    seeds[points[:, 1], points[:, 0]] = 0
    _, labels = cv2.distanceTransformWithLabels(seeds, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    image = random_colours(rng, int(labels.max()) + 1)[labels]
    edges = cv2.morphologyEx(labels.astype(np.float32), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    image[edges] *= rng.uniform(0.2, 0.7)
    return image


def marble(rng: np.random.Generator, size: int) -> np.ndarray:
    """Veins: a sine of position perturbed by fractal noise (marble, wood grain)."""
    x, y = coordinates(size)
    angle = rng.uniform(0, np.pi)
    phase = (np.cos(angle) * x + np.sin(angle) * y) * rng.uniform(3, 20)
    phase = phase + rng.uniform(2, 12) * fractal_noise(rng, size, int(rng.integers(2, 6)))
    return palette_map(rng, (0.5 + 0.5 * np.sin(phase)) ** rng.uniform(0.5, 3.0))


def bokeh(rng: np.random.Generator, size: int) -> np.ndarray:
    """Out-of-focus lights: soft bright discs added over a dim gradient."""
    image = gradient(rng, size) * rng.uniform(0.2, 0.7)
    lights = np.zeros_like(image)
    for colour in random_colours(rng, int(rng.integers(10, 60))):
        centre = tuple(int(c) for c in rng.integers(0, size, 2))
        colour = tuple(float(c) for c in colour * rng.uniform(0.2, 0.6))
        cv2.circle(lights, centre, int(rng.integers(size // 40 + 1, size // 6)), colour, -1, cv2.LINE_AA)
    return np.clip(image + cv2.GaussianBlur(lights, (0, 0), rng.uniform(1.0, 4.0)), 0, 1)


FAMILIES = {"train": (noise, gradient, stripes, clutter), "heldout": (cells, marble, bokeh)}


@functools.lru_cache(maxsize=PHOTO_CACHE)
def load_photo(path: str, short_side: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB photo scaled so its short side is at most ``short_side``."""
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"backgrounds: cannot read the image {path}")
    scale = short_side / min(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def random_view(rng: np.random.Generator, image: np.ndarray, width: int, height: int) -> np.ndarray:
    """(height, width, 3) uint8: a random square crop (50-100 % of the short side) of uint8
    ``image``, flipped and turned by a multiple of 90 degrees at random, resized, with random
    contrast, brightness and colour cast."""
    h, w = image.shape[:2]
    side = max(1, int(min(h, w) * rng.uniform(0.5, 1.0)))
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    view = image[y:y + side, x:x + side]
    if rng.random() < 0.5:
        view = cv2.flip(view, 1)
    turn = int(rng.integers(4))
    if turn:
        view = cv2.rotate(view, (cv2.ROTATE_90_CLOCKWISE, cv2.ROTATE_180, cv2.ROTATE_90_COUNTERCLOCKWISE)[turn - 1])
    view = cv2.resize(view, (width, height), interpolation=cv2.INTER_AREA if side > max(width, height)
                      else cv2.INTER_LINEAR)
    gain = rng.uniform(0.6, 1.2) * rng.uniform(0.9, 1.1, 3)
    offset = 255 * (rng.uniform(-0.15, 0.15) + 0.5 * (1 - gain))
    table = np.clip(np.arange(256)[:, None] * gain + offset + 0.5, 0, 255).astype(np.uint8)  # (256, 3)
    return cv2.LUT(view, table.reshape(256, 1, 3))


class Backgrounds:
    """``sample(rng, index) -> (S, S, 3) uint8`` background of sample ``index``;
    ``texture(rng, index, width, height)`` a procedural one (occluders use it too)."""

    def __init__(self, size: int, split: str = "train", seed: int = 0, folder: str = None):
        self.size, self.split, self.seed = size, split, seed
        self.families = FAMILIES[split]
        self._pool = {}  # (generation, slot) -> (S, S, 3) uint8, this generation and the last
        self.photos = []
        if folder:
            if not os.path.isdir(folder):
                raise ValueError(f"backgrounds: {folder} is not a folder")
            self.photos = sorted(os.path.join(root, f) for root, _, files in os.walk(folder) for f in files
                                 if f.lower().endswith(IMAGE_EXTENSIONS))
            if not self.photos:
                raise ValueError(f"backgrounds: no images ({', '.join(IMAGE_EXTENSIONS)}) in {folder}")

    def pooled(self, generation: int, slot: int) -> np.ndarray:
        """(S, S, 3) uint8 texture number ``slot`` of ``generation``."""
        key = (generation, slot)
        if key not in self._pool:
            if len(self._pool) >= 2 * POOL:
                self._pool = {k: v for k, v in self._pool.items() if k[0] == generation}
            rng = np.random.default_rng([self.seed, SPLITS[self.split], TEXTURE_STREAM, generation, slot])
            image = self.families[rng.integers(len(self.families))](rng, self.size)
            if rng.random() < 0.4:  # depth of field
                image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 2.5))
            self._pool[key] = np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8)
        return self._pool[key]

    def texture(self, rng: np.random.Generator, index: int, width: int, height: int) -> np.ndarray:
        return random_view(rng, self.pooled(index // GENERATION, int(rng.integers(POOL))), width, height)

    def sample(self, rng: np.random.Generator, index: int) -> np.ndarray:
        if self.photos and rng.random() < PHOTO_PROBABILITY:
            photo = load_photo(self.photos[int(rng.integers(len(self.photos)))], int(self.size / 0.5) + 1)
            return random_view(rng, photo, self.size, self.size)
        return self.texture(rng, index, self.size, self.size)
