"""The cameras file of a multi-view capture (``--cameras CAMERAS.json``): read, check, write.

A JSON list with one entry per view, in the order the views are given on the command line::

    [{"K": [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], "R": [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "t": [0, 0, 0]},
     {"K": ..., "R": ..., "t": [tx, ty, tz]}, ...]

``x_view = R @ x_first + t`` in OpenCV axes (x right, y down, z forward), ``K`` in pixels, ``t`` in
metres: the first view has R = I and t = 0. Optional per entry: ``image_size`` [width, height] pixels,
``distortion`` (OpenCV's k1, k2, p1, p2[, k3]; default none), ``name``, and whatever a calibration
reports (``reprojection_px``...), which readers ignore. Writing is atomic (temporary file, then rename).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from typing import Optional

import numpy as np


class CamerasError(ValueError):
    """A cameras file that cannot be used; the message names the file, the view and the problem."""


@dataclasses.dataclass
class ViewCamera:
    """One view's pinhole camera relative to the first view (metres, pixels)."""

    K: np.ndarray                              # (3, 3) intrinsics, pixels
    R: np.ndarray                              # (3, 3) rotation: x_view = R @ x_first + t
    t: np.ndarray                              # (3,) metres
    image_size: Optional[tuple] = None         # (width, height) pixels, when known
    distortion: Optional[np.ndarray] = None    # (4,) or (5,) OpenCV coefficients; None: none
    extra: dict = dataclasses.field(default_factory=dict)   # other keys of the entry, kept on writing

    @property
    def centre(self) -> np.ndarray:
        """(3,) the camera's centre in the first view's space, metres."""
        return -self.R.T @ self.t

    def to_view(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) points in the first view's space -> this view's camera space."""
        return np.asarray(points) @ self.R.T + self.t

    def project(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) points in the first view's space -> (..., 2) pixels in this view (no distortion)."""
        x = self.to_view(points) @ self.K.T
        return x[..., :2] / x[..., 2:3]


def identity_camera(K: np.ndarray, image_size: Optional[tuple] = None) -> ViewCamera:
    """The first view's camera: intrinsics K (3, 3), R = I, t = 0."""
    return ViewCamera(np.asarray(K, np.float64), np.eye(3), np.zeros(3), image_size)


def _matrix(entry: dict, key: str, shape: tuple, where: str) -> np.ndarray:
    if key not in entry:
        raise CamerasError(f"{where}: missing {key!r}")
    try:
        value = np.asarray(entry[key], np.float64)
    except (TypeError, ValueError):
        raise CamerasError(f"{where}: {key!r} is not a list of numbers") from None
    if value.shape != shape:
        raise CamerasError(f"{where}: {key!r} must have shape {shape}, got {value.shape}")
    if not np.all(np.isfinite(value)):
        raise CamerasError(f"{where}: {key!r} holds NaN or infinite values")
    return value


def camera_from_entry(entry: dict, where: str) -> ViewCamera:
    """One JSON entry -> ViewCamera, checked (``where`` names it in errors)."""
    if not isinstance(entry, dict):
        raise CamerasError(f"{where}: each view is an object with 'K', 'R' and 't'")
    K, R, t = _matrix(entry, "K", (3, 3), where), _matrix(entry, "R", (3, 3), where), _matrix(entry, "t", (3,), where)
    if K[0, 0] <= 0 or K[1, 1] <= 0 or np.any(K[2] != [0, 0, 1]):
        raise CamerasError(f"{where}: 'K' must have positive focal lengths and last row [0, 0, 1]")
    if np.abs(R @ R.T - np.eye(3)).max() > 1e-4 or np.linalg.det(R) <= 0:
        raise CamerasError(f"{where}: 'R' is not a rotation (orthonormal, determinant +1)")
    size = entry.get("image_size")
    if size is not None:
        size = tuple(int(v) for v in size)
        if len(size) != 2 or min(size) <= 0:
            raise CamerasError(f"{where}: 'image_size' must be [width, height] in pixels")
    distortion = entry.get("distortion")
    if distortion is not None:
        distortion = np.asarray(distortion, np.float64).ravel()
        if distortion.size not in (4, 5, 8) or not np.all(np.isfinite(distortion)):
            raise CamerasError(f"{where}: 'distortion' must hold OpenCV's 4, 5 or 8 coefficients")
    extra = {k: v for k, v in entry.items() if k not in ("K", "R", "t", "image_size", "distortion")}
    return ViewCamera(K, R, t, size, distortion, extra)


def load_cameras(path: str, views: Optional[int] = None) -> list[ViewCamera]:
    """Read a cameras file; ``views``: the number of views it must describe (None: any)."""
    try:
        with open(path, encoding="utf-8") as f:
            entries = json.load(f)
    except FileNotFoundError:
        raise CamerasError(f"{path}: no such cameras file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CamerasError(f"{path}: not a readable cameras file ({e})") from None
    if isinstance(entries, dict) and "cameras" in entries:      # also accept {"cameras": [...], ...}
        entries = entries["cameras"]
    if not isinstance(entries, list) or not entries:
        raise CamerasError(f"{path}: a cameras file is a JSON list with one entry per view")
    cameras = [camera_from_entry(e, f"{path}: view {i + 1}") for i, e in enumerate(entries)]
    if views is not None and len(cameras) != views:
        raise CamerasError(f"{path}: describes {len(cameras)} cameras, but {views} views were given")
    if np.abs(cameras[0].R - np.eye(3)).max() > 1e-4 or np.abs(cameras[0].t).max() > 1e-6:
        raise CamerasError(f"{path}: view 1 must have R = I and t = 0 (the other views are given relative to it)")
    return cameras


def camera_entry(camera: ViewCamera) -> dict:
    """ViewCamera -> a JSON-ready entry."""
    entry = {"K": np.round(camera.K, 6).tolist(), "R": np.round(camera.R, 9).tolist(),
             "t": np.round(camera.t, 9).tolist()}
    if camera.image_size is not None:
        entry["image_size"] = [int(v) for v in camera.image_size]
    if camera.distortion is not None:
        entry["distortion"] = np.round(camera.distortion, 9).tolist()
    entry.update(camera.extra)
    return entry


def save_cameras(path: str, cameras: list[ViewCamera]) -> None:
    """Write ``cameras`` as a cameras file, atomically."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=".cameras-", suffix=".json", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as f:
            json.dump([camera_entry(c) for c in cameras], f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
