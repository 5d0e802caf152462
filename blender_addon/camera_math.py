"""Pinhole intrinsics (OpenCV K, pixels) to Blender camera settings, in numpy (no bpy).

The Blender camera sits at the world origin with identity rotation (looking down -Z, +Y up),
which is the OpenCV camera under ``rig_math.CV_TO_BLENDER``. Pixel centres are at integer
coordinates (OpenCV's convention), so pixel u covers [u - 0.5, u + 0.5] and the image spans
[-0.5, W - 0.5]. With sensor fit HORIZONTAL, Blender measures lens shift in units of the
image width for both axes, and a positive shift moves the view (so the principal point
moves the other way).

Several views (``Capture.views``): view c sees a point x of the first camera's OpenCV space at
``R_c @ x + t_c``. Its Blender camera is placed relative to the first one by ``view_from_first``,
so whatever world transform the first camera and the hands get (``clear_view``), every view gets too.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .rig_math import CV_TO_BLENDER

SENSOR_WIDTH_MM = 36.0


@dataclasses.dataclass
class CameraSettings:
    """What to put on a Blender camera and the scene's render settings to match K."""

    lens_mm: float
    sensor_width_mm: float
    shift_x: float
    shift_y: float
    resolution: tuple          # (width, height) pixels
    pixel_aspect: tuple        # (pixel_aspect_x, pixel_aspect_y)


def camera_settings(K: np.ndarray, image_size) -> CameraSettings:
    """Blender camera settings reproducing the projection ``K @ x_cv`` on a W x H image.

    Non-square pixels (fx != fy) become a pixel aspect ratio; skew is ignored.
    """
    K = np.asarray(K, np.float64)
    width, height = int(image_size[0]), int(image_size[1])
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    # Blender's pixel aspect y/x must be fx/fy (K's pixels are fy/fx times wider than tall);
    # both values are at least 1 in Blender.
    aspect = (fy / fx, 1.0) if fy >= fx else (1.0, fx / fy)
    return CameraSettings(
        lens_mm=float(fx * SENSOR_WIDTH_MM / width),
        sensor_width_mm=SENSOR_WIDTH_MM,
        shift_x=float((width / 2.0 - cx - 0.5) / width),
        shift_y=float((cy + 0.5 - height / 2.0) * (fx / fy) / width),
        resolution=(width, height),
        pixel_aspect=(float(aspect[0]), float(aspect[1])),
    )


def project(K: np.ndarray, points_cv: np.ndarray) -> np.ndarray:
    """Pixel coordinates (..., 2) of camera-space points (..., 3): OpenCV pinhole projection."""
    p = np.asarray(points_cv, np.float64) @ np.asarray(K, np.float64).T
    return p[..., :2] / p[..., 2:3]


def view_from_first(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The pose (4, 4) of view c's Blender camera in the first view's Blender camera frame.

    R (3, 3), t (3,) metres: view c sees the first camera's OpenCV point x at ``R @ x + t``.
    A Blender camera's own axes are OpenCV's under ``CV_TO_BLENDER`` (x right, y up, looking
    down -z), so the answer is ``F @ [R | t]^-1 @ F`` with F = CV_TO_BLENDER: Blender camera c
    -> OpenCV camera c -> OpenCV camera 0 -> Blender camera 0. View c's ``matrix_world`` is
    the first camera's ``matrix_world @`` this.
    """
    R = np.asarray(R, np.float64)
    t = np.asarray(t, np.float64).reshape(3)
    first_from_view = np.eye(4)
    first_from_view[:3, :3] = R.T
    first_from_view[:3, 3] = -R.T @ t
    F = np.eye(4)
    F[:3, :3] = CV_TO_BLENDER
    return F @ first_from_view @ F
