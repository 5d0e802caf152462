"""Metrics against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from training import metrics


def random_rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def test_procrustes_recovers_a_similarity_transform():
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(5, 21, 3)) * 0.05
    pred = np.stack([2.5 * g @ random_rotation(rng).T + rng.normal(size=3) for g in gt])
    np.testing.assert_allclose(metrics.procrustes_align(pred, gt), gt, atol=1e-12)
    assert metrics.pa_errors_mm(pred, gt).max() < 1e-9


def test_procrustes_uses_proper_rotations_only():
    rng = np.random.default_rng(1)
    gt = rng.normal(size=(1, 21, 3))
    mirrored = gt * np.array([-1.0, 1.0, 1.0])
    aligned = metrics.procrustes_align(mirrored, gt)
    assert metrics.point_errors(aligned, gt).mean() > 0.1  # a mirror is no rotation
    # the alignment it found is a rotation + scale: distances between points keep their ratios
    d_aligned = np.linalg.norm(aligned[0, 0] - aligned[0, 1]) / np.linalg.norm(aligned[0, 2] - aligned[0, 3])
    d_input = np.linalg.norm(gt[0, 0] - gt[0, 1]) / np.linalg.norm(gt[0, 2] - gt[0, 3])
    assert np.isclose(d_aligned, d_input)


def test_mpjpe_of_a_known_offset():
    gt = np.random.default_rng(2).normal(size=(3, 21, 3)) * 0.05
    pred = gt + np.array([0.003, 0.004, 0.0])                     # 5 mm everywhere
    np.testing.assert_allclose(1000 * metrics.point_errors(pred, gt), 5.0)
    assert metrics.pa_errors_mm(pred, gt).max() < 1e-9            # a translation aligns away


def test_pck_and_auc_of_a_step():
    errors = np.full((4, 21), 10.0)                               # every error is 10 mm
    thresholds = np.array([0.0, 10.0, 20.0, 30.0, 40.0, 50.0])
    np.testing.assert_array_equal(metrics.pck_curve(errors, thresholds), [0, 1, 1, 1, 1, 1])
    # trapezoids: (0 + 1) / 2 * 10 + 4 * 10 = 45 over a range of 50
    assert metrics.auc(thresholds, metrics.pck_curve(errors, thresholds)) == pytest.approx(0.9)
    summary = metrics.keypoint_summary(errors)
    assert summary["pa_mpjpe_mm"] == 10.0 and summary["auc_20_50"] == 1.0
    assert summary["auc_0_50"] == pytest.approx(0.8, abs=0.01) and len(summary["pck_curve"]["pck"]) == 100
    assert metrics.keypoint_summary(np.zeros((1, 21)))["auc_0_50"] == 1.0
    assert metrics.keypoint_summary(np.full((1, 21), 60.0))["auc_0_50"] == 0.0


def test_f_score_cases():
    rng = np.random.default_rng(3)
    points = np.cumsum(np.full((1, 10, 3), 0.01), axis=1)         # 10 points 17 mm apart on a line
    assert metrics.f_score(points, points, 0.005)[0] == 1.0
    assert metrics.f_score(points + 1.0, points, 0.015)[0] == 0.0
    half = points.copy()
    half[:, 5:] += 1.0                                            # half the prediction far away
    assert metrics.f_score(half, points, 0.005)[0] == pytest.approx(0.5)  # precision = recall = 1/2
    extra = np.concatenate([points, points + 1.0], axis=1)        # all targets found, half the points wrong
    assert metrics.f_score(extra, points, 0.005)[0] == pytest.approx(2 * 0.5 * 1.0 / 1.5)  # 2/3
    cloud = rng.normal(size=(2, 50, 3))
    scores = metrics.mesh_scores(cloud, cloud)
    np.testing.assert_allclose(scores["pa_mpvpe_mm"], 0, atol=1e-9)
    np.testing.assert_array_equal(scores["f5"], 1.0)


def test_pck_2d():
    gt = np.zeros((1, 4, 2))
    pred = np.array([[[0.05, 0.0], [0.0, 0.2], [0.3, 0.4], [0.0, 0.0]]])
    assert metrics.pck_2d(pred, gt, 0.1) == 0.5
    assert metrics.pck_2d(pred, gt, 0.1, visible=np.array([[True, True, False, False]])) == 0.5
    assert metrics.pck_2d(pred, gt, 0.5) == 1.0


def test_root_relative_metrics_count_the_global_rotation():
    # two keypoints 30 mm and 40 mm from the root; a half turn about z moves them 60 mm and 80 mm
    gt = np.zeros((1, 3, 3))
    gt[0, 1], gt[0, 2] = [0.03, 0.0, 0.0], [0.0, 0.04, 0.0]
    turned = gt * np.array([-1.0, -1.0, 1.0])
    scores = metrics.root_relative_summary(turned, gt)
    assert scores["rr_mpjpe_mm"] == pytest.approx((0 + 60 + 80) / 3)
    # PCK over 20-50 mm: only the root (error 0) is ever within -> 1/3 everywhere
    assert scores["rr_auc_20_50"] == pytest.approx(1 / 3)
    assert metrics.pa_errors_mm(turned, gt).max() < 1e-9           # Procrustes aligns the turn away
