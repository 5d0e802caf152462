"""The ChArUco board in pictures: a printable image of it, and its corners found in the frames of clips
(the layout itself: ``spec.BoardSpec``)."""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import Iterator, Optional

import cv2
import numpy as np

from .spec import BoardSpec, CalibrationError

MIN_CORNERS = 6                          # a view of the board with fewer corners is not used
PRINT_DPI = 300


def write_print_image(spec: BoardSpec, path: str, dpi: int = PRINT_DPI) -> tuple[int, int]:
    """Write the board as a PNG to print at 100% scale (``dpi`` recorded in the file): squares of exactly
    ``square_m`` on paper, a white margin of one square. Returns the image's (width, height) pixels."""
    pixels = max(8, int(round(spec.square_m / 0.0254 * dpi)))
    image = spec.image(pixels, margin_px=pixels)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if not cv2.imwrite(path, image):
        raise CalibrationError(f"--print-board {path}: cannot write a PNG there")
    _set_png_dpi(path, dpi)
    return image.shape[1], image.shape[0]


def _set_png_dpi(path: str, dpi: int) -> None:
    """Add a pHYs chunk (pixels per metre) so that printing programs print the board at its true size."""
    import struct
    import zlib
    with open(path, "rb") as f:
        data = f.read()
    per_metre = int(round(dpi / 0.0254))
    body = b"pHYs" + struct.pack(">IIB", per_metre, per_metre, 1)
    chunk = struct.pack(">I", 9) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
    end_of_header = 8 + 25                       # signature + IHDR chunk
    with open(path, "wb") as f:
        f.write(data[:end_of_header] + chunk + data[end_of_header:])


@dataclasses.dataclass
class BoardView:
    """The board's corners found in one frame of one clip."""

    instant: int                 # the first clip's frame index this frame shows (frame - offset)
    ids: np.ndarray              # (n,) int corner ids (rows of BoardSpec.corners())
    pixels: np.ndarray           # (n, 2) float64 sub-pixel corner positions


class BoardFinder:
    """``find(gray) -> (ids (n,), pixels (n, 2))`` of the board's inner corners in one (H, W) uint8 frame."""

    def __init__(self, spec: BoardSpec):
        self.spec = spec
        charuco = cv2.aruco.CharucoParameters()
        charuco.minMarkers = 1
        markers = cv2.aruco.DetectorParameters()
        markers.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_NONE   # ChArUco refines the chessboard corners
        self._detector = cv2.aruco.CharucoDetector(spec.board(), charuco, markers)

    def find(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        corners, ids, _, _ = self._detector.detectBoard(gray)
        if ids is None or len(ids) < MIN_CORNERS:
            return np.zeros(0, int), np.zeros((0, 2))
        return ids.reshape(-1).astype(int), corners.reshape(-1, 2).astype(np.float64)


def clip_frames(path: str, stride: int, offset: int = 0, limit: int = 0) -> Iterator[tuple[int, np.ndarray]]:
    """(instant, (H, W, 3) uint8 BGR) of every ``stride``-th instant of a video (or a folder of images, in
    name order): frame f shows instant f - ``offset``; instants below 0 are skipped. Frames in between are
    only grabbed, not decoded. ``limit``: stop after this many instants (0: the whole clip)."""
    if os.path.isdir(path):
        names = sorted(n for n in os.listdir(path) if n.lower().endswith((".png", ".jpg", ".jpeg", ".bmp", ".tif")))
        for frame, name in enumerate(names):
            instant = frame - offset
            if instant >= 0 and instant % stride == 0:
                if limit and instant // stride >= limit:
                    return
                image = cv2.imread(os.path.join(path, name))
                if image is not None:
                    yield instant, image
        return
    video = cv2.VideoCapture(path)
    if not video.isOpened():
        raise CalibrationError(f"{path}: not a readable video")
    try:
        frame = -1
        while True:
            if not video.grab():
                return
            frame += 1
            instant = frame - offset
            if instant < 0 or instant % stride:
                continue
            if limit and instant // stride >= limit:
                return
            ok, image = video.retrieve()
            if ok and image is not None:
                yield instant, image
    finally:
        video.release()


def find_board(path: str, spec: BoardSpec, stride: int, offset: int = 0,
               progress: Optional[callable] = None) -> tuple[list[BoardView], tuple[int, int]]:
    """The board in every ``stride``-th instant of clip ``path``: (views with >= MIN_CORNERS corners,
    image size (width, height)). CalibrationError when the clip has no frame or the board is never seen."""
    finder, views, size, frames = BoardFinder(spec), [], None, 0
    for instant, image in clip_frames(path, stride, offset):
        frames += 1
        size = (image.shape[1], image.shape[0])
        ids, pixels = finder.find(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
        if len(ids):
            views.append(BoardView(instant, ids, pixels))
        if progress is not None:
            progress(frames, len(views))
    if size is None:
        raise CalibrationError(f"{path}: no frames could be read")
    if not views:
        raise CalibrationError(f"{path}: the board ({spec.squares_x} x {spec.squares_y} squares, dictionary "
                               f"{spec.dictionary}) was not found in any of its {frames} sampled frames; check --board "
                               "and --dictionary, and that the whole board is in view and sharp")
    return views, size


def stderr_progress(name: str, what: str = "board in") -> callable:
    """A ``progress(frames, found)`` that rewrites one stderr line every 10 frames."""
    def report(frames: int, found: int) -> None:
        if frames % 10 == 0:
            print(f"\r  {name}: {frames} frames, {what} {found}", end="", file=sys.stderr, flush=True)
    return report
