"""The whole-track temporal solve (core/engine/temporal.py): against a dense solve of the same energy,
the filter's known response, and gap filling on rotations whose truth is known."""

import numpy as np
import pytest
import torch

from core.engine.temporal import (BRIDGE_SUPPORT_SECONDS, MAX_BRIDGE_SECONDS, MAX_FILL_SECONDS, cutoff_hz, segments, smoothness_weight, solve_track,
                                  whittaker)
from core.hand_model.rotations import axis_angle_to_matrix


def dense_minimiser(values: np.ndarray, weights: np.ndarray, lam: float) -> np.ndarray:
    """The energy's normal equations (W + lam D^T D) x = W y solved densely, D built by np.diff."""
    second = np.diff(np.eye(len(values)), n=2, axis=0)                       # (T-2, T)
    system = np.diag(weights) + lam * second.T @ second
    return np.linalg.solve(system, weights[:, None] * values)


@pytest.mark.parametrize("count", [3, 4, 5, 57])
def test_whittaker_matches_a_dense_solve(count):
    rng = np.random.default_rng(count)
    values = rng.normal(size=(count, 4))
    weights = rng.uniform(0.1, 1.0, count)
    weights[1:-1:3] = 0.0                                                     # unseen frames inside
    np.testing.assert_allclose(whittaker(values, weights, 7.3), dense_minimiser(values, weights, 7.3),
                               rtol=1e-9, atol=1e-9)


def test_whittaker_keeps_straight_lines_and_lowers_noise():
    t = np.arange(90, dtype=np.float64)
    line = np.stack([2.0 + 0 * t, 0.5 - 0.03 * t], axis=1)                   # constant and steady motion
    weights = np.ones(90)
    weights[40:52] = 0.0                                                      # a gap: bridged on the line
    np.testing.assert_allclose(whittaker(line, weights, 1e4), line, atol=1e-8)
    noise = np.random.default_rng(0).normal(0.0, 1.0, (600, 3))
    smooth, smoother = whittaker(noise, np.ones(600), 10.0), whittaker(noise, np.ones(600), 1000.0)
    assert smooth.var(0).max() < 0.25 * noise.var(0).min()
    assert smoother.var(0).max() < 0.6 * smooth.var(0).min()                  # larger lam, smoother


def test_smoothness_weight_halves_the_cutoff_frequency():
    fps, cutoff = 30.0, 2.0
    t = np.arange(3000) / fps
    wave = np.sin(2 * np.pi * cutoff * t)[:, None]
    out = whittaker(wave, np.ones(len(t)), smoothness_weight(cutoff, fps))
    middle = slice(500, -500)                                                 # away from the ends
    assert np.abs(out[middle]).max() == pytest.approx(0.5, abs=0.01)         # gain 1/2 at the cut-off
    slow = np.sin(2 * np.pi * 0.2 * t)[:, None]                               # well below it: kept
    np.testing.assert_allclose(whittaker(slow, np.ones(len(t)), smoothness_weight(cutoff, fps))[middle],
                               slow[middle], atol=0.01)


def test_strength_lowers_the_cutoff_monotonically():
    cutoffs = [cutoff_hz(s) for s in np.linspace(0.01, 1.0, 20)]
    assert all(a > b for a, b in zip(cutoffs, cutoffs[1:]))
    lams = [smoothness_weight(c, 30.0) for c in cutoffs]
    assert all(a < b for a, b in zip(lams, lams[1:]))


def test_segments_split_at_long_gaps():
    seen = np.array([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0], bool)
    assert segments(seen, 2) == [slice(1, 6), slice(10, 12)]
    assert segments(seen, 4) == [slice(1, 12)]
    assert segments(np.zeros(4, bool), 3) == []


def test_segments_bridge_longer_gaps_between_long_runs_only():
    seen = np.zeros(60, bool)
    seen[:10], seen[16:30], seen[32:36], seen[40:60] = True, True, True, True     # runs of 10, 14, 4, 20
    assert segments(seen, 2) == [slice(0, 10), slice(16, 36), slice(40, 60)]     # gaps of 6 and 4 frames: too long
    # gaps up to 6 bridged between runs of at least 10 frames (0-10, 16-36 once its 2-frame gap is filled, 40-60)
    assert segments(seen, 2, bridge_gap=6, support=10) == [slice(0, 60)]
    assert segments(seen, 2, bridge_gap=6, support=11) == [slice(0, 10), slice(16, 60)]
    assert segments(seen, 2, bridge_gap=5, support=1) == [slice(0, 10), slice(16, 60)]
    inside = np.ones(60, bool)
    inside[9] = False                                            # the hand was at the edge as the first gap began
    assert segments(seen, 2, bridge_gap=6, support=10, inside=inside) == [slice(0, 10), slice(16, 60)]


def test_a_hand_at_the_pictures_edge_is_not_inside():
    from core.engine.run import EDGE_MARGIN, inside_picture
    size = (640, 480)
    assert EDGE_MARGIN == 0.5
    assert inside_picture(np.array([300.0, 200.0, 400.0, 260.0]), size)      # 100 px hand, 200+ px from every edge
    assert inside_picture(np.array([50.0, 50.0, 150.0, 150.0]), size)        # exactly half a hand from two edges
    assert not inside_picture(np.array([49.0, 200.0, 149.0, 260.0]), size)   # less than half a hand from the left
    assert not inside_picture(np.array([500.0, 200.0, 600.0, 260.0]), size)  # 40 px from the right edge
    assert not inside_picture(np.array([300.0, 400.0, 380.0, 470.0]), size)  # 10 px from the bottom


def test_solve_track_bridges_a_hand_hidden_for_longer_between_steady_runs():
    """A gap longer than MAX_FILL_SECONDS but within MAX_BRIDGE_SECONDS is filled, on the motion,
    when the track runs BRIDGE_SUPPORT_SECONDS on both sides; glimpsed for less on one side, it is not."""
    fps = 30.0
    support, gap = int(BRIDGE_SUPPORT_SECONDS * fps), int(MAX_BRIDGE_SECONDS * fps) - 2
    assert gap > MAX_FILL_SECONDS * fps
    count = 2 * support + gap
    pose = turning_hand(count)
    wrist = np.stack([np.linspace(0.0, 0.1, count), np.zeros(count), np.full(count, 0.5)], axis=1)
    seen = np.ones(count, bool)
    seen[support:support + gap] = False
    _, out_wrist, interpolated = solve_track(pose, wrist, np.full(count, 0.9), seen, fps, 0.5)
    assert interpolated.tolist() == (~seen).tolist()
    np.testing.assert_allclose(out_wrist[~seen], wrist[~seen], atol=1e-3)      # on the straight motion
    seen[:2] = False                                                           # the run before: too short
    _, _, interpolated = solve_track(pose, wrist, np.full(count, 0.9), seen, fps, 0.5)
    assert not interpolated.any()


def turning_hand(count: int) -> np.ndarray:
    """(count, 16, 3) axis-angle: the wrist turning steadily about a fixed axis, fingers bending steadily."""
    angle = np.linspace(0.2, 1.4, count)
    pose = np.zeros((count, 16, 3))
    pose[:, 0] = angle[:, None] * np.array([0.0, 0.6, 0.8])
    pose[:, 1:, 0] = 0.5 * angle[:, None]
    return pose


def test_solve_track_fills_short_gaps_and_leaves_long_ones():
    fps, count = 30.0, 120
    pose = turning_hand(count)
    wrist = np.stack([np.linspace(0.0, 0.1, count), np.zeros(count), np.full(count, 0.5)], axis=1)
    seen = np.ones(count, bool)
    short = np.arange(20, 20 + int(MAX_FILL_SECONDS * fps))                  # as long as may be filled
    long_ = np.arange(45, 45 + int(MAX_BRIDGE_SECONDS * fps) + 2)            # longer than may be bridged
    seen[short], seen[long_] = False, False
    noisy = pose.copy()
    noisy[~seen] = 7.0                                                        # what unseen frames hold must not matter
    for strength in (0.0, 0.5):
        out_pose, out_wrist, interpolated = solve_track(noisy, wrist, np.full(count, 0.9), seen, fps, strength)
        assert interpolated.tolist() == [f in short for f in range(count)]
        rotations = axis_angle_to_matrix(torch.as_tensor(out_pose)).numpy()
        truth = axis_angle_to_matrix(torch.as_tensor(pose)).numpy()
        np.testing.assert_allclose(rotations[short], truth[short], atol=2e-3)   # the gap bridged on the motion
        np.testing.assert_allclose(out_wrist[short], wrist[short], atol=1e-4)
        last_before, first_after = long_[0] - 1, long_[-1] + 1                    # long gap: nearest seen frame
        np.testing.assert_allclose(out_pose[long_[:5]], np.repeat(out_pose[last_before][None], 5, 0), atol=1e-12)
        np.testing.assert_allclose(out_pose[long_[-5:]], np.repeat(out_pose[first_after][None], 5, 0), atol=1e-12)
    per_frame, wrist_0, _ = solve_track(noisy, wrist, np.full(count, 0.9), seen, fps, 0.0)
    np.testing.assert_array_equal(per_frame[seen], noisy[seen])                # strength 0: seen frames as estimated
    np.testing.assert_array_equal(wrist_0[seen], wrist[seen])


def test_solve_track_smooths_jitter_on_rotations():
    fps, count = 30.0, 120
    pose = turning_hand(count)
    rng = np.random.default_rng(1)
    noisy = pose + rng.normal(0.0, 0.05, pose.shape)                          # ~3 degrees of jitter
    wrist = np.full((count, 3), 0.5) + rng.normal(0.0, 0.005, (count, 3))
    seen = np.ones(count, bool)
    out_pose, out_wrist, interpolated = solve_track(noisy, wrist, np.ones(count), seen, fps, 0.5)
    assert not interpolated.any()
    truth = axis_angle_to_matrix(torch.as_tensor(pose)).numpy()
    before = np.abs(axis_angle_to_matrix(torch.as_tensor(noisy)).numpy() - truth).mean()
    after = np.abs(axis_angle_to_matrix(torch.as_tensor(out_pose)).numpy() - truth).mean()
    assert after < 0.4 * before
    assert out_wrist.std(0).max() < 0.6 * wrist.std(0).min()
    with pytest.raises(ValueError, match="seen frame"):
        solve_track(noisy, wrist, np.ones(count), np.zeros(count, bool), fps, 0.5)
