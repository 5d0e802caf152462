"""Overlapping square tiles of a large photo, for the palm detector.

The palm detector sees the whole photo letterboxed into 192 px: a hand a tenth of a 640 px photo's
side is 19 px there, below what it finds. Square tiles of half the photo's short side, overlapping by
a third of their side (a hand cut by one tile's edge lies whole inside its neighbour), show such hands
at twice the size. Photos whose short side is under ``2 * MIN_TILE_SIDE`` are not tiled.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

TILE_FRACTION = 0.5          # tile side / the photo's short side
TILE_OVERLAP = 1.0 / 3.0     # of a tile's side, shared with its neighbour
MIN_TILE_SIDE = 160          # pixels: smaller tiles would show nothing the whole photo does not


@dataclasses.dataclass(frozen=True)
class Tile:
    """A square of a photo: top-left corner and side, pixels."""

    x0: int
    y0: int
    side: int

    def cut(self, rgb: np.ndarray) -> np.ndarray:
        """The tile's pixels of an (H, W, 3) photo, contiguous."""
        return np.ascontiguousarray(rgb[self.y0:self.y0 + self.side, self.x0:self.x0 + self.side])


def _starts(length: int, side: int, step: float) -> list[int]:
    """Tile starts along one axis: evenly spaced from 0 to length - side, at most ``step`` apart."""
    if length <= side:
        return [0]
    count = math.ceil((length - side) / step) + 1
    return [int(round(s)) for s in np.linspace(0, length - side, count)]


def photo_tiles(height: int, width: int, fraction: float = TILE_FRACTION, overlap: float = TILE_OVERLAP,
                min_side: int = MIN_TILE_SIDE) -> list[Tile]:
    """Tiles covering a (height, width) photo, row by row; none when the tiles would be under ``min_side``."""
    side = int(round(fraction * min(height, width)))
    if side < min_side:
        return []
    step = side * (1.0 - overlap)
    return [Tile(x, y, side) for y in _starts(height, side, step) for x in _starts(width, side, step)]
