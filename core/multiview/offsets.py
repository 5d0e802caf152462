"""Videos filmed together but not started together: their frame offsets, found from the hands' motion.

View v's frame f + N_v shows the instant of the first view's frame f (the ``--offsets`` convention).
With the cameras known, the right N_v is the one at which the hands the two views see at "the same"
instant triangulate consistently: at a wrong offset the hand has moved between the two pictures,
and its landmarks no longer meet in 3D. So per candidate offset, over the instants both views have a
hand, the cost is the median of each instant's best pairing's reprojection error (in hand-box sides,
``core.multiview.matching.reprojection_cost``); the offset of least cost wins. A hand that hardly
moves gives every offset about the same cost: then the search says so instead of guessing
(``OffsetSearchError``), and the user gives ``--offsets`` (a clap, a flash).

Units: frames, pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

from core.engine.inputs import InputError, VideoOptions
from core.engine.run import detected_frames

from .matching import projection_matrices, reprojection_cost

SEARCH_FRAMES = 150      # frames of the first view read (5 s at 30 frames/s)
MAX_OFFSET = 90          # the offsets tried: -MAX_OFFSET..MAX_OFFSET frames (3 s at 30 frames/s)
MIN_SHARED = 10          # instants with a hand in both views that an offset needs to be scored
CLEAR = 0.7              # the best offset's cost must be below this share of the median offset's


class OffsetSearchError(InputError):
    """The hands' motion does not fix the offset (too little motion, too few hands in both views)."""


def hand_series(engine, path: str, frames: int) -> dict[int, list[tuple[np.ndarray, float]]]:
    """The first ``frames`` frames of a video -> per frame index, its hands as ((21, 2) landmarks in
    pixels, box side in pixels), found by the engine's detector in tracking mode."""
    video = cv2.VideoCapture(path)
    detector = engine.video_detector()
    try:
        if not video.isOpened():
            raise InputError(f"{path}: not a readable video (corrupt or unsupported codec)")
        count = max(0, int(video.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
        series = {}
        stream = detected_frames(engine, path, video, count, VideoOptions(frame_end=frames - 1), detector)
        try:
            for index, _, found in stream:
                series[index] = [(np.asarray(d.keypoints_2d, np.float64), float(np.ptp(d.keypoints_2d, axis=0).max()))
                                 for d in found if d.keypoints_2d is not None]
        finally:
            stream.close()
        return series
    finally:
        if detector is not None:
            detector.close()
        video.release()


def offset_costs(first: dict, other: dict, P: np.ndarray, max_offset: int = MAX_OFFSET) -> dict[int, float]:
    """Hand series of the first view and of another (``hand_series``), P (2, 3, 4) their projection
    matrices -> per offset N in -max_offset..max_offset with MIN_SHARED instants or more: the median
    over instants f (the first view's frames with a hand whose frame f + N of the other view has one)
    of the least reprojection cost of pairing a hand of each."""
    costs = {}
    for offset in range(-max_offset, max_offset + 1):
        per_instant = []
        for f, hands in first.items():
            seen = other.get(f + offset)
            if not hands or not seen:
                continue
            per_instant.append(min(reprojection_cost(P, np.stack([a, b]), np.array([sa, sb]))[0]
                                   for a, sa in hands for b, sb in seen))
        if len(per_instant) >= MIN_SHARED:
            costs[offset] = float(np.median(per_instant))
    return costs


def best_offset(costs: dict[int, float], what: str) -> int:
    """The offset of least cost, or OffsetSearchError (naming ``what``) when none is clearly best."""
    finite = {k: v for k, v in costs.items() if np.isfinite(v)}
    if len(finite) < 3:
        raise OffsetSearchError(f"{what}: too few instants with a hand in both views to find the offset; "
                                f"give --offsets")
    best = min(finite, key=finite.get)
    if finite[best] > CLEAR * float(np.median(list(finite.values()))):
        raise OffsetSearchError(f"{what}: the hands move too little to tell the offset (best {best} frames, "
                                f"cost {finite[best]:.3f} against a median {np.median(list(finite.values())):.3f}); "
                                f"give --offsets")
    return best


def find_offsets(engine, paths: list[str], cameras, frames: int = SEARCH_FRAMES, max_offset: int = MAX_OFFSET,
                 progress=None) -> list[int]:
    """Each view's offset from the first view (``--offsets auto``): [0, N_1, N_2, ...] frames.
    ``progress``: a callable (views read, views) after each view is read."""
    P = projection_matrices(cameras)
    first = hand_series(engine, paths[0], frames)
    if progress is not None:
        progress(1, len(paths))
    offsets = [0]
    for v in range(1, len(paths)):
        other = hand_series(engine, paths[v], frames + max_offset)
        offsets.append(best_offset(offset_costs(first, other, P[[0, v]], max_offset), paths[v]))
        if progress is not None:
            progress(v + 1, len(paths))
    return offsets
