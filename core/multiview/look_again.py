"""Each fitted hand looked for again in every view, where the other views put it.

One view's detector can miss a hand (small, side-on, blurred) or read it badly (fingers swapped, a
wrist off the arm), and a badly read hand may then not be matched to the others at all. Once the
views that agree have been fitted together, the fit says where the hand is in *every* view: its
landmark points projected there (``in_picture``). In each such view the landmark model looks in the
window those points give (MediaPipe's tracking window, ``core.engine.detect.window_from_landmarks``),
as a tracker looks where the last frame put the hand. The new look is kept where it agrees with
the projection (mean distance under AGREE hand-box sides) better than what the view had: it joins
the view's detections (a missed hand) or replaces the view's reading of that hand (a worse one).
The caller then fits again with the improved views (``core.multiview.estimate.estimate_views``).

A view whose reading already agrees within GOOD is not looked at again. Units: pixels, metres.
"""

from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from core.engine.detect import window_from_landmarks

AGREE = 0.3         # hand-box sides: a new look this close to the fit's projection (mean over landmarks) counts
GOOD = 0.06         # ... a view's reading this close already is left as it is
SAME_HAND = 0.5     # ... a view's detection this close is the same hand (replaced, not added to)
MIN_INSIDE = 15     # landmarks of 21 that must project inside the picture for a view to be looked at


def in_picture(points: np.ndarray, camera, size: tuple[int, int]) -> Optional[np.ndarray]:
    """(21, 3) points in the first view's frame (metres) -> (21, 2) pixels where ``camera`` (a ViewCamera,
    its lens distortion applied) sees them in a picture of ``size`` (width, height); None where the hand
    is behind the camera or too little of it falls inside the picture."""
    points = np.asarray(points, np.float64)
    seen = points @ np.asarray(camera.R, np.float64).T + np.asarray(camera.t, np.float64)
    if np.any(seen[:, 2] <= 0.05):
        return None
    distortion = camera.distortion if camera.distortion is not None else np.zeros(4)
    pixels = cv2.projectPoints(seen, np.zeros(3), np.zeros(3), np.asarray(camera.K, np.float64),
                               np.asarray(distortion, np.float64))[0][:, 0]
    inside = (pixels[:, 0] >= 0) & (pixels[:, 0] < size[0]) & (pixels[:, 1] >= 0) & (pixels[:, 1] < size[1])
    return pixels if inside.sum() >= MIN_INSIDE else None


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean distance of two (21, 2) landmark sets in sides of b's box (pixels / pixels)."""
    return float(np.linalg.norm(a - b, axis=1).mean() / max(float(np.ptp(b, axis=0).max()), 1.0))


def look_again(detector, images: list[np.ndarray], cameras, detections: list[list], hands: list) -> list[int]:
    """Look for every fitted hand again in every view (see the module docstring).

    detector: the engine's HandDetector (its ``look(rgb, window)``); images: V (H, W, 3) uint8 RGB;
    cameras: V ViewCameras; detections: per view its Detections, updated in place; hands: the fitted
    HandEstimates (joints_3d in the first view's frame). Returns the views whose detections changed."""
    changed = set()
    for hand in hands:
        for v, (rgb, camera) in enumerate(zip(images, cameras)):
            expected = in_picture(hand.joints_3d, camera, (rgb.shape[1], rgb.shape[0]))
            if expected is None:
                continue
            readings = [(distance(d.keypoints_2d, expected), i) for i, d in enumerate(detections[v])
                        if d.keypoints_2d is not None]
            held, index = min(readings, default=(np.inf, -1))
            if held < GOOD:
                continue
            found = detector.look(rgb, window_from_landmarks(expected))
            if found is None or found.keypoints_2d is None:
                continue
            new = distance(found.keypoints_2d, expected)
            if new >= min(AGREE, held):
                continue
            found.source = "views"
            if held < SAME_HAND:
                detections[v][index] = found
            else:
                detections[v].append(found)
            changed.add(v)
    return sorted(changed)
