"""One camera's intrinsics (K, distortion) from its views of the board, and the board's pose in each view.

``cv2.calibrateCamera`` on up to MAX_FRAMES views spread over the clip (Zhang's method: homographies of the
plane, then Levenberg-Marquardt on the reprojection error); the board's pose in every view by
``cv2.solvePnP`` (IPPE for a plane, then refined).
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from .board import BoardView
from .spec import BoardSpec, CalibrationError

MAX_FRAMES = 60                # views given to calibrateCamera (its cost grows with their number)
VIEW_RMS_FLOOR_PX = 0.3        # a view is dropped when its corners' RMS exceeds 3x the median view's and this
MIN_FRAMES = 4                 # fewer views of the board cannot fix focal length and centre
DISTORTION_MODELS = ("none", "radial", "full")   # fixed at 0 | k1, k2 | k1, k2, p1, p2, k3


@dataclasses.dataclass
class Intrinsics:
    """A camera's intrinsics and how well they explain its board views."""

    K: np.ndarray                  # (3, 3) pixels
    distortion: np.ndarray         # (5,) OpenCV k1, k2, p1, p2, k3
    image_size: tuple              # (width, height) pixels
    rms_px: float                  # reprojection RMS of calibrateCamera over the views it used
    frames: int                    # views it used
    views: list = dataclasses.field(default_factory=list)   # the board views these intrinsics explain
                                                            # (BoardView; the others were dropped)


def _flags(model: str) -> int:
    flags = cv2.CALIB_FIX_K3 | cv2.CALIB_ZERO_TANGENT_DIST
    if model == "none":
        flags |= cv2.CALIB_FIX_K1 | cv2.CALIB_FIX_K2
    elif model == "full":
        flags = 0
    return flags


def calibrate_intrinsics(spec: BoardSpec, views: list[BoardView], image_size: tuple, name: str,
                         distortion: str = "radial") -> Intrinsics:
    """K and distortion of one camera from its board ``views``; CalibrationError (naming ``name``) when
    there are too few of them."""
    usable = [v for v in views if len(v.ids) >= 8]
    if len(usable) < MIN_FRAMES:
        raise CalibrationError(f"{name}: the board was seen well (8 corners or more) in {len(usable)} sampled frames; "
                               f"at least {MIN_FRAMES} are needed for its intrinsics (film the board longer, closer, "
                               "or lower --stride)")
    K, dist, rms, count = _calibrate(spec, usable, image_size, distortion)
    # Views these intrinsics cannot explain (the board at a grazing angle or in motion blur: corners off by
    # pixels) are dropped, and the camera calibrated again without them.
    errors = np.array([view_rms(spec, v, K, dist) for v in views])
    limit = max(VIEW_RMS_FLOOR_PX, 3 * float(np.median(errors)))
    kept = [v for v, e in zip(views, errors) if e <= limit]
    if len(kept) < len(views):
        good = [v for v in kept if len(v.ids) >= 8]
        if len(good) >= MIN_FRAMES:
            K, dist, rms, count = _calibrate(spec, good, image_size, distortion)
    return Intrinsics(K, dist, tuple(image_size), rms, count, kept)


def _calibrate(spec: BoardSpec, views: list[BoardView], image_size: tuple, distortion: str):
    """cv2.calibrateCamera on up to MAX_FRAMES of ``views`` spread over the clip: (K, (5,) distortion, rms, views)."""
    chosen = [views[i] for i in np.linspace(0, len(views) - 1, min(MAX_FRAMES, len(views))).round().astype(int)]
    corners = spec.corners()
    objects = [corners[v.ids].astype(np.float32) for v in chosen]
    pixels = [v.pixels.astype(np.float32).reshape(-1, 1, 2) for v in chosen]
    rms, K, dist, _, _ = cv2.calibrateCamera(objects, pixels, tuple(int(s) for s in image_size), None, None,
                                             flags=_flags(distortion))
    dist = np.zeros(5) if dist is None else np.asarray(dist, np.float64).ravel()[:5]
    return np.asarray(K, np.float64), np.pad(dist, (0, 5 - dist.size)), float(rms), len(chosen)


def view_rms(spec: BoardSpec, view: BoardView, K: np.ndarray, distortion: np.ndarray) -> float:
    """RMS (px) of one view's corners about the board's best pose (``board_pose``) in a camera (K, distortion)."""
    r, t = board_pose(spec, view, K, distortion)
    pixels = cv2.projectPoints(spec.corners()[view.ids], r, t, K, distortion)[0].reshape(-1, 2)
    return float(np.sqrt(np.mean(np.sum((pixels - view.pixels) ** 2, 1))))


def board_pose(spec: BoardSpec, view: BoardView, K: np.ndarray, distortion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rvec (3,), tvec (3,)): board frame -> this camera (x_cam = R(rvec) @ x_board + tvec, metres)."""
    objects = spec.corners()[view.ids]
    pixels = view.pixels.reshape(-1, 1, 2)
    ok, rvec, tvec = cv2.solvePnP(objects, pixels, K, distortion, flags=cv2.SOLVEPNP_IPPE)
    if not ok:
        ok, rvec, tvec = cv2.solvePnP(objects, pixels, K, distortion, flags=cv2.SOLVEPNP_ITERATIVE)
    rvec, tvec = cv2.solvePnPRefineLM(objects, pixels, K, distortion, rvec, tvec)
    return rvec.ravel(), tvec.ravel()
