"""Hand regions: the turned rectangles of a photo that the landmark model looks at, made as
MediaPipe's hand graphs make them.

A ``Region`` is in pixels of the full image; its rotation is MediaPipe's: the angle (radians) by
which the region is turned clockwise in the image (x right, y down), so that the hand points up in
the crop. MediaPipe keeps regions as fractions of the image; every step below is the same in pixels.

- From a palm detection (PalmDetectionDetectionToRoi): the detection's box, turned so that palm
  keypoint 0 (wrist) -> keypoint 2 (middle finger's base) points up, moved by -0.5 of its height
  along the turned up axis, made square on its long side and scaled by 2.6.
- From landmarks (HandLandmarkLandmarksToRoi, the tracker's next region): 12 of the 21 landmarks
  (wrist, thumb base three, and the two lowest joints of each finger); turned so that the wrist ->
  mean of (middle finger's base, mean of the index and ring fingers' bases) points up; their extent in the turned frame,
  moved by -0.1 of its height along up, square on the long side, scaled by 2.
- Two regions whose axis-aligned boxes (rotation ignored) overlap by IoU > 0.5 are one hand
  (AssociationNormRectCalculator): the later one replaces the earlier.

A region can be ``mirrored``: its crop is cut flipped left-right (handcap's addition, not MediaPipe's),
so that a left hand is seen as a right one, as the networks on the landmark trunk want their crops
(core.networks.landmark_trunk); crop coordinates are then those of the flipped crop.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

PALM_SCALE, PALM_SHIFT_Y = 2.6, -0.5               # region from a palm detection
LANDMARK_SCALE, LANDMARK_SHIFT_Y = 2.0, -0.1       # region from the last landmarks (tracking)
PALM_ROTATION_KEYPOINTS = (0, 2)                   # wrist -> middle finger's base
REGION_LANDMARKS = (0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18)
ROTATION_LANDMARKS = (0, 5, 9, 13)                 # wrist, index / middle / ring finger bases (MediaPipe's
                                                   # "PIP" 4, 6, 8 of the 12 REGION_LANDMARKS)
SAME_HAND_IOU = 0.5
_FLOAT_MIN = float(np.finfo(np.float32).tiny)      # MediaPipe's initial maximum of a bound


@dataclasses.dataclass(frozen=True)
class Region:
    """A rectangle of an image, turned: centre (pixels), width and height (pixels), rotation (radians);
    ``mirrored``: its crop is flipped left-right (see the module docstring)."""

    cx: float
    cy: float
    width: float
    height: float
    rotation: float = 0.0
    mirrored: bool = False

    def to_image(self, local: np.ndarray) -> np.ndarray:
        """(..., 2) crop coordinates as fractions of the region (0..1, x right, y down in the crop) ->
        image pixels (MediaPipe's LandmarkProjectionCalculator: turned, then scaled by width and height)."""
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        x, y = local[..., 0] - 0.5, local[..., 1] - 0.5
        if self.mirrored:
            x = -x
        return np.stack([(c * x - s * y) * self.width + self.cx, (s * x + c * y) * self.height + self.cy], axis=-1)

    def box(self) -> np.ndarray:
        """(4,) x0, y0, x1, y1: the axis-aligned box of the region's centre and size, rotation ignored
        (MediaPipe's region overlap test)."""
        return np.array([self.cx - self.width / 2, self.cy - self.height / 2,
                         self.cx + self.width / 2, self.cy + self.height / 2])


def normalize_radians(angle: float) -> float:
    """An angle in [-pi, pi)."""
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


def up_rotation(start: np.ndarray, end: np.ndarray) -> float:
    """The rotation that turns the image vector start -> end (pixels, y down) to point up in the crop."""
    return normalize_radians(math.pi / 2 - math.atan2(-(end[1] - start[1]), end[0] - start[0]))


def transform_region(region: Region, scale: float, shift_y: float) -> Region:
    """MediaPipe's RectTransformationCalculator (no x shift, square on the long side): the centre moved
    by ``shift_y`` heights along the region's own y axis, then a square of ``scale`` x the long side."""
    r = region.rotation
    cx = region.cx - region.height * shift_y * math.sin(r)
    cy = region.cy + region.height * shift_y * math.cos(r)
    side = max(region.width, region.height) * scale
    return Region(cx, cy, side, side, r, region.mirrored)


def region_from_palm(box: np.ndarray, keypoints: np.ndarray) -> Region:
    """A palm detection, box (4,) x0, y0, x1, y1 and keypoints (7, 2), pixels -> the hand's region."""
    start, end = (keypoints[i] for i in PALM_ROTATION_KEYPOINTS)
    raw = Region((box[0] + box[2]) / 2, (box[1] + box[3]) / 2, box[2] - box[0], box[3] - box[1],
                 up_rotation(start, end))
    return transform_region(raw, PALM_SCALE, PALM_SHIFT_Y)


def region_from_landmarks(points: np.ndarray, mirrored: bool = False) -> Region:
    """(21, 2) landmarks, pixels -> the region the tracker looks at in the next frame (its crop
    flipped left-right when ``mirrored``)."""
    points = np.asarray(points, np.float64)
    wrist, index, middle, ring = (points[i] for i in ROTATION_LANDMARKS)
    rotation = up_rotation(wrist, ((index + ring) / 2 + middle) / 2)
    part = points[list(REGION_LANDMARKS)]
    low, high = part.min(0), np.maximum(part.max(0), _FLOAT_MIN)
    centre = (low + high) / 2
    c, s = math.cos(-rotation), math.sin(-rotation)
    turned = (part - centre) @ np.array([[c, s], [-s, c]])          # into the region's axes
    low, high = turned.min(0), np.maximum(turned.max(0), _FLOAT_MIN)
    middle = (low + high) / 2
    c, s = math.cos(rotation), math.sin(rotation)
    cx = middle[0] * c - middle[1] * s + centre[0]
    cy = middle[0] * s + middle[1] * c + centre[1]
    raw = Region(cx, cy, high[0] - low[0], high[1] - low[1], rotation, mirrored)
    return transform_region(raw, LANDMARK_SCALE, LANDMARK_SHIFT_Y)


def region_iou(a: Region, b: Region) -> float:
    """IoU of two regions' axis-aligned boxes (``Region.box``)."""
    p, q = a.box(), b.box()
    w = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
    h = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
    inter = w * h
    union = a.width * a.height + b.width * b.height - inter
    return inter / union if union > 0 else 0.0


def merge_regions(*groups: list[Region], iou: float = SAME_HAND_IOU) -> list[Region]:
    """One region per hand from groups of regions in increasing priority (MediaPipe: the palm
    detector's, then the tracker's): each region, in order, removes the earlier ones it overlaps."""
    merged: list[Region] = []
    for group in groups:
        for region in group:
            merged = [m for m in merged if region_iou(region, m) <= iou] + [region]
    return merged
