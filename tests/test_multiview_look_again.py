"""Looking again for a fitted hand in every view (core.multiview.look_again).

``in_picture`` is checked against the pinhole and radial-distortion formulas written out here; the
choice of what to look at and what to keep against a stand-in detector whose answers are known; and
the whole step on a rendered three-view sample whose third view's detector misses the hand: the look
where the other two views put it must find the hand there, on the render's own true landmarks."""

from __future__ import annotations

import os
import types

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from core.engine.detect import Detection
from core.multiview import look_again as look
from core.multiview.cameras import ViewCamera

K = np.array([[500.0, 0, 320.0], [0, 500.0, 240.0], [0, 0, 1]])
SIZE = (640, 480)


def hand_points(rng) -> np.ndarray:
    """(21, 3) points spread like a hand (9 cm) around 0.5 m in front of the first camera."""
    return np.array([0.0, 0.0, 0.5]) + rng.uniform(-0.045, 0.045, (21, 3))


def cameras() -> list[ViewCamera]:
    turned = Rotation.from_euler("y", 30, degrees=True).as_matrix()
    centre = np.array([0.0, 0.0, 0.5])
    return [ViewCamera(K, np.eye(3), np.zeros(3), SIZE),
            ViewCamera(K, turned, centre - turned @ centre, SIZE),
            ViewCamera(K, turned.T, centre - turned.T @ centre, SIZE)]


def pinhole(points, camera) -> np.ndarray:
    seen = points @ camera.R.T + camera.t
    return np.stack([K[0, 0] * seen[:, 0] / seen[:, 2] + K[0, 2], K[1, 1] * seen[:, 1] / seen[:, 2] + K[1, 2]], 1)


def test_in_picture_is_the_pinhole_projection_with_the_lens_distortion():
    rng = np.random.default_rng(0)
    points = hand_points(rng)
    for camera in cameras():
        np.testing.assert_allclose(look.in_picture(points, camera, SIZE), pinhole(points, camera), atol=1e-6)
    k1 = -0.2
    seen = points / points[:, 2:]
    r2 = (seen[:, :2] ** 2).sum(1, keepdims=True)
    expected = seen[:, :2] * (1 + k1 * r2) * K[0, 0] + K[:2, 2]
    bent = ViewCamera(K, np.eye(3), np.zeros(3), SIZE, distortion=np.array([k1, 0.0, 0.0, 0.0]))
    np.testing.assert_allclose(look.in_picture(points, bent, SIZE), expected, atol=1e-6)
    assert look.in_picture(points - [0.0, 0.0, 0.6], cameras()[0], SIZE) is None          # behind the camera
    assert look.in_picture(points + [0.5, 0.0, 0.0], cameras()[0], SIZE) is None          # outside the picture


class StandIn:
    """A detector whose ``look`` answers the given landmarks per view (None: no hand) and records the windows."""

    def __init__(self, answers: dict):
        self.answers, self.windows = answers, []

    def look(self, rgb, window):
        view = int(rgb[0, 0, 0])
        self.windows.append((view, window))
        points = self.answers.get(view)
        return None if points is None else Detection(box=np.r_[points.min(0), points.max(0)], side="right",
                                                      score=0.9, keypoints_2d=points)


def reading(points) -> Detection:
    return Detection(box=np.r_[points.min(0), points.max(0)], side="right", score=0.9, keypoints_2d=points)


def test_look_again_adds_a_missed_hand_replaces_a_worse_reading_and_leaves_a_good_one():
    rng = np.random.default_rng(1)
    points, cams = hand_points(rng), cameras()
    truth = [pinhole(points, c) for c in cams]
    box = [float(np.ptp(t, 0).max()) for t in truth]
    images = [np.full((SIZE[1], SIZE[0], 3), v, np.uint8) for v in range(3)]
    detections = [[reading(truth[0] + 0.01 * box[0])],                        # agrees already: not looked at
                  [reading(truth[1] + [0.3 * box[1], 0.0])],                  # the same hand, read 0.3 box off
                  []]                                                         # missed
    good = {1: truth[1] + 0.02 * box[1], 2: truth[2] - 0.03 * box[2]}
    detector = StandIn(good)
    changed = look.look_again(detector, images, cams, detections, [types.SimpleNamespace(joints_3d=points)])
    assert changed == [1, 2]
    assert [v for v, _ in detector.windows] == [1, 2]
    for v, window in detector.windows:                    # the windows sit on the hand's projection
        assert np.linalg.norm([window.cx, window.cy] - truth[v].mean(0)) < 0.5 * box[v]
        assert box[v] < window.size < 4 * box[v]
    assert len(detections[0]) == 1 and np.allclose(detections[0][0].keypoints_2d, truth[0] + 0.01 * box[0])
    assert len(detections[1]) == 1 and np.allclose(detections[1][0].keypoints_2d, good[1])
    assert len(detections[2]) == 1 and np.allclose(detections[2][0].keypoints_2d, good[2])
    assert detections[2][0].source == "views"


def test_look_again_keeps_nothing_that_disagrees_with_the_fit():
    rng = np.random.default_rng(2)
    points, cams = hand_points(rng), cameras()
    truth = [pinhole(points, c) for c in cams]
    box = float(np.ptp(truth[2], 0).max())
    images = [np.full((SIZE[1], SIZE[0], 3), v, np.uint8) for v in range(3)]
    detections = [[reading(truth[0])], [reading(truth[1])], []]
    detector = StandIn({2: truth[2] + [0.4 * box, 0.0]})                        # another hand, beside it
    assert look.look_again(detector, images, cams, detections, [types.SimpleNamespace(joints_3d=points)]) == []
    assert detections[2] == []


def test_a_hand_one_views_detector_misses_is_found_where_the_other_views_put_it(monkeypatch):
    from core.engine.pipeline import Engine, EngineOptions
    from core.multiview import estimate as estimate_module
    from training.synth.multiview import MultiViewSynthesizer

    pictures, _, cams, truth = MultiViewSynthesizer(3, seed=11, size=320).render(4)
    engine = Engine(EngineOptions(device="cpu"))
    try:
        assert not [d for d in engine.detect(pictures[2]) if d.keypoints_2d is not None]   # the miss
        seen = {}

        def recorded(detector, images, cameras, detections, hands):
            seen["changed"] = look.look_again(detector, images, cameras, detections, hands)
            seen["detections"] = detections
            return seen["changed"]

        monkeypatch.setattr(estimate_module, "look_again", recorded)
        hands = estimate_module.estimate_views(engine, pictures, cams)
    finally:
        engine.close()
    assert 2 in seen["changed"] and len(hands) == 1
    true_2d = np.asarray(truth["landmarks_2d"][2])
    found = [d for d in seen["detections"][2] if d.source == "views"]
    assert len(found) == 1
    error = np.linalg.norm(found[0].keypoints_2d - true_2d, axis=1).mean() / np.ptp(true_2d, 0).max()
    assert error < look.AGREE


def test_a_failed_view_overlay_leaves_no_capture_and_no_overlay(tmp_path, monkeypatch):
    """--overlay with --views writes the capture and one overlay per view, or nothing."""
    import cv2
    from core.engine.inputs import InputError
    from core.engine.pipeline import EngineOptions
    from core.multiview import run as views_run
    paths = []
    for v in range(3):
        paths.append(str(tmp_path / f"view{v}.png"))
        cv2.imwrite(paths[-1], np.full((SIZE[1], SIZE[0], 3), 80 + 40 * v, np.uint8))
    monkeypatch.setattr(views_run, "estimate_views", lambda engine, images, cameras, progress=None: [])
    written = []

    def failing(path, bgr):
        if len(written) == 1:
            raise InputError(f"{path}: cannot write the image")
        cv2.imwrite(path, bgr)
        written.append(path)

    monkeypatch.setattr(views_run, "write_image", failing)
    out = tmp_path / "out"
    estimator = views_run.ViewsEstimator(EngineOptions(device="cpu"), str(out), overlay=True)
    try:
        with pytest.raises(InputError):
            estimator.run(paths, cameras())
    finally:
        estimator.close()
    assert len(written) == 1 and not os.path.exists(written[0])
    assert sorted(os.listdir(out)) == []
