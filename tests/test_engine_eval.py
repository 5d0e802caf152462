"""training.engine_eval: matching a detection to the true hand, and the metrics of found hands,
checked against hand-computed values (the engine itself is exercised in tests/test_engine.py)."""

from __future__ import annotations

import types

import numpy as np
import pytest

from training.engine_eval import pick_detection, summarise


def test_pick_detection_takes_the_box_over_the_true_hand():
    true_2d = np.array([[100.0, 100.0], [140.0, 160.0]] * 10 + [[120.0, 130.0]])     # box 100..140, 100..160
    far = types.SimpleNamespace(box=np.array([300.0, 300.0, 340.0, 360.0]))
    near = types.SimpleNamespace(box=np.array([105.0, 100.0, 145.0, 160.0]))
    assert pick_detection([far, near], true_2d) == 1
    assert pick_detection([far], true_2d) is None
    assert pick_detection([], true_2d) is None


def test_summarise_counts_found_hands_and_measures_by_hand():
    rng = np.random.default_rng(0)
    true = rng.normal(size=(2, 21, 3)) * 0.05
    # hand 0: the truth turned by 90 degrees about z around its wrist and moved: PA error 0, root-relative error
    # |R p - p| per joint; hand 1: the truth itself.
    turn = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    rel = true[0] - true[0, :1]
    pred = np.stack([rel @ turn.T + np.array([0.1, 0.2, 0.5]), true[1]])
    pred_2d = [np.zeros((21, 2)), np.zeros((21, 2))]
    true_2d = [np.full((21, 2), 3.0), np.full((21, 2), 4.0)]          # errors 3*sqrt2 and 4*sqrt2 px
    entry = summarise("m", 5, list(pred), list(true), pred_2d, true_2d)
    assert entry["count"] == 5 and entry["found"] == 2
    assert entry["pa_mpjpe_mm"] == pytest.approx(0.0, abs=1e-6)
    expected_rr = 1000 * np.concatenate([np.linalg.norm(rel @ turn.T - rel, axis=1), np.zeros(21)])
    assert entry["rr_mpjpe_mm"] == pytest.approx(expected_rr.mean(), rel=1e-6)
    assert entry["rr_median_mm"] == pytest.approx(np.median(expected_rr), rel=1e-6)
    assert entry["err_2d_px"] == pytest.approx(3.5 * np.sqrt(2), rel=1e-9)
    assert len(entry["per_joint_pa_mm"]) == 21


def test_summarise_with_no_hand_found_has_only_counts():
    assert summarise("m", 3, [], [], [], []) == {"name": "m", "count": 3, "found": 0}


def test_landmark_truth_of_a_render_is_its_true_hands_landmark_points():
    """A left render: the truth compared with is the true hand's landmark points, wrist where the
    render's wrist is, the thumb base moved off the CMC joint by about its offset; a photo's truth
    (no open-hand pose) is its own joints_3d."""
    import torch
    from core.hand_model.landmark_points import load_offsets
    from training.engine_eval import LandmarkTruth
    from training.synth import SyntheticHands
    raw = SyntheticHands(count=8, seed=3, split="heldout")
    sample = next(raw[i] for i in range(8) if bool(raw[i]["is_left"]))
    truth = LandmarkTruth()(sample)
    joints = sample["joints_3d"].numpy()
    offsets, length = load_offsets()
    moved = np.linalg.norm(truth - joints, axis=1)                    # each offset turned with its bones
    size = np.linalg.norm(offsets, axis=1)
    assert np.all((0.6 * size < moved) & (moved < 1.6 * size))        # scaled by the hand's length
    photo = dict(sample, has_mesh=torch.tensor(False))
    assert np.array_equal(LandmarkTruth()(photo), joints.astype(np.float64))
