"""Photos of one instant from several calibrated cameras -> the hands, each fitted to every view.

    hands = estimate_views(engine, [rgb_0, rgb_1, rgb_2], cameras)     # [HandEstimate], first view's frame

Per view the single-view engine runs (detection, network, fit: ``Engine.estimate_frames``), which
gives each hand's landmarks, side call and a start; the views' hands are matched by triangulation
(core.multiview.matching), and each matched hand is fitted to all its views at once
(core.multiview.fit). Then every fitted hand is looked for again in each view where the fit puts
it (core.multiview.look_again: a missed or misread hand), and the changed views are fitted again. Units: metres (the first camera's frame, OpenCV axes), pixels, radians.
"""

from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from core.engine.pipeline import Engine, HandEstimate

from .fit import MultiViewFitter
from .look_again import look_again
from .matching import ViewHand, match_views


def view_hands(view: int, detections: list, estimates: list[HandEstimate]) -> list[ViewHand]:
    """One view's detections and their single-view estimates (one each, in order) -> ViewHands. A hand
    without a detector's landmarks (a user's box) is matched and fitted through its estimate's keypoints
    at half weight."""
    hands = []
    for d, e in zip(detections, estimates):
        landmarks = d.keypoints_2d is not None
        points = np.asarray(d.keypoints_2d if landmarks else e.keypoints_2d, np.float64)
        hands.append(ViewHand(view=view, keypoints_2d=points, weights=np.full(21, 1.0 if landmarks else 0.5),
                              box_side=max(float(np.ptp(points, axis=0).max()), 1.0), score=float(d.score),
                              side=e.side, side_confidence=float(e.side_confidence),
                              world=getattr(d, "world_landmarks", None), estimate=e, from_landmarks=landmarks))
    return hands


def undistorted(hands: list[ViewHand], camera) -> list[ViewHand]:
    """The hands' landmarks moved where a pinhole camera with the same K would see them, when the
    camera has lens distortion (``ViewCamera.distortion``, OpenCV's model); the hands as they are otherwise."""
    if camera.distortion is None or not np.any(camera.distortion):
        return hands
    K = np.asarray(camera.K, np.float64)
    for h in hands:
        h.keypoints_2d = cv2.undistortPoints(np.ascontiguousarray(h.keypoints_2d, np.float64)[:, None], K,
                                             np.asarray(camera.distortion, np.float64), P=K)[:, 0]
    return hands


def fit_instants(engine: Engine, seen: list[list[tuple]], cameras, widths: list[int],
                 fitter: Optional[MultiViewFitter] = None) -> list[list[HandEstimate]]:
    """seen[f][v]: view v's (detections, single-view estimates) at instant f -> per instant its hands,
    matched across views and fitted to all of them, in the first view's frame. All instants' hands
    go through the fit as one batch."""
    fitter = fitter or MultiViewFitter(engine.fitter)
    groups, owner = [], []
    for f, views in enumerate(seen):
        found = match_views([undistorted(view_hands(v, d, e), cameras[v]) for v, (d, e) in enumerate(views)], cameras)
        groups += found
        owner += [f] * len(found)
    with engine.times("multiview fit"):
        fitted = fitter.fit(groups, cameras, widths) if groups else []
    hands = [[] for _ in seen]
    for f, hand in zip(owner, fitted):
        hands[f].append(hand)
    return hands


def estimate_views(engine: Engine, images: list[np.ndarray], cameras, fitter: Optional[MultiViewFitter] = None,
                   progress=None, look: bool = True) -> list[HandEstimate]:
    """images: V (H, W, 3) uint8 RGB photos taken at one instant; cameras: V ViewCameras (view 0 the
    identity; K in these images' pixels). Returns the hands, each fitted to every view it is seen in,
    in the first camera's frame (joints_3d metres; keypoints_2d: the projection into view 0). With
    one view: the single-view engine's answer. ``progress``: a callable (view, views) after each view;
    ``look``: look again where the fit puts each hand (not with the user's boxes, which fix the hands)."""
    if len(images) != len(cameras):
        raise ValueError(f"{len(images)} images but {len(cameras)} cameras")
    def estimate(v, found):
        return engine.estimate_frames([images[v]], np.asarray(cameras[v].K, np.float64), [found])[0]

    detections, estimates = [], []
    for v, rgb in enumerate(images):
        detections.append(engine.detect(rgb))
        estimates.append(estimate(v, detections[-1]))
        if progress is not None:
            progress(v + 1, len(images))
    if len(images) == 1:
        return estimates[0]
    widths = [rgb.shape[1] for rgb in images]
    hands = fit_instants(engine, [list(zip(detections, estimates))], cameras, widths, fitter)[0]
    if look and not engine.options.boxes:
        with engine.times("look again"):
            changed = look_again(engine.detector, images, cameras, detections, hands)
        if changed:
            for v in changed:
                estimates[v] = estimate(v, detections[v])
            hands = fit_instants(engine, [list(zip(detections, estimates))], cameras, widths, fitter)[0]
    return hands
