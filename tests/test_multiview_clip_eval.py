"""training.multiview_clip_eval's scorer on hand-made tracks (no engine run): exact tracks score zero,
and a track that is one hand in view 0 and the other hand in view 1 is flagged."""

from types import SimpleNamespace

import numpy as np

from core.multiview.cameras import ViewCamera
from training.multiview_clip_eval import clip_truth, score_multiview_clip

K = np.array([[600.0, 0, 320], [0, 600.0, 240], [0, 0, 1]])


def rotation_y(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def cameras() -> list:
    """View 0 at the origin; view 1 turned 50 degrees around a point 0.5 m ahead (x_1 = R x_0 + t)."""
    R = rotation_y(np.deg2rad(-50))
    centre = np.array([0.0, 0.0, 0.5])
    return [ViewCamera(K, np.eye(3), np.zeros(3), (640, 480)), ViewCamera(K, R, centre - R @ centre, (640, 480))]


def track(points: np.ndarray, frames: np.ndarray) -> SimpleNamespace:
    """A capture-track stand-in: joints_3d (N, 21, 3) metres in view 0, keypoints_2d their view-0 projection."""
    return SimpleNamespace(frame_index=frames, valid=np.ones(len(frames), bool), joints_3d=points,
                           keypoints_2d=cameras()[0].project(points))


def scene(frames: int = 8, offset: int = 2):
    """Two true hands A, B and a point set P on A's view-0 rays and B's view-1 rays (what a wrong
    cross-view match triangulates): truth.npz-like arrays (view 1 starts ``offset`` frames late) and P."""
    rng = np.random.default_rng(0)
    cams = cameras()
    rows = frames + offset
    shape = rng.normal(0, 0.03, (21, 3)) * [1, 1, 0.3]
    drift = np.linspace(0, 0.02, rows)[:, None, None] * [1, 0, 0]
    a = shape + [-0.06, 0.0, 0.45] + drift                                   # (T, 21, 3)
    p = a * 1.3                                                               # same view-0 rays, deeper
    c1 = cams[1].centre
    b = c1 + 0.85 * (p - c1)                                                  # on P's view-1 rays
    landmarks_3d = np.stack([a, b], 1)                                        # (T, 2, 21, 3)
    landmarks_2d = np.stack([c.project(landmarks_3d) for c in cams])          # (V, T, 2, 21, 2)
    truth = {"landmarks_3d": landmarks_3d, "landmarks_2d": landmarks_2d, "in_frame": np.ones((2, rows, 2)),
             "frame_offset": np.array([0, -offset]), "sides": np.array(["left", "right"])}
    return truth, p, cams


def test_clip_truth_keeps_the_instants_every_view_has():
    truth, _, _ = scene(frames=8, offset=2)
    visible = clip_truth(truth)["visible"]
    assert visible.shape == (10, 2)
    np.testing.assert_array_equal(np.flatnonzero(visible[:, 0]), np.arange(2, 8))   # view 0: 0..7, view 1 from 2


def test_exact_tracks_score_zero():
    truth, _, cams = scene()
    frames = np.arange(2, 8)
    tracks = [track(truth["landmarks_3d"][frames, h], frames) for h in range(2)]
    entry = score_multiview_clip(truth, tracks, cams)
    assert entry["tracks_per_hand"] == [1, 1] and entry["id_switches"] == 0 and entry["frames_lost"] == 0
    assert entry["view_swaps"] == 0
    for hand in entry["per_hand"]:
        assert hand["frames"] == 6 and hand["mpjpe_mm"] < 1e-6 and max(hand["view_px"]) < 1e-6


def test_a_track_swapped_between_views_is_flagged():
    truth, p, cams = scene()
    frames = np.arange(2, 8)
    # precondition, computed independently: P is A in view 0 and B in view 1, and A, B are apart in both
    two_d = truth["landmarks_2d"]
    assert np.abs(cams[0].project(p) - two_d[0, :, 0]).max() < 1e-6
    assert np.abs(cams[1].project(p) - two_d[1, :, 1]).max() < 1e-6
    apart = [np.linalg.norm(two_d[v, :, 0] - two_d[v, :, 1], axis=-1).mean() for v in range(2)]
    assert min(apart) > 40
    tracks = [track(p[frames], frames), track(truth["landmarks_3d"][frames, 1], frames)]
    entry = score_multiview_clip(truth, tracks, cams)
    swapped, right = entry["per_hand"]
    assert entry["tracks_per_hand"] == [1, 1] and entry["id_switches"] == 0      # view 0 alone sees nothing wrong
    assert swapped["view_swaps"] == 6 and right["view_swaps"] == 0 and entry["view_swaps"] == 6
    assert swapped["view_px"][0] < 1e-6
    expected = np.linalg.norm(two_d[1, frames, 0] - two_d[1, frames, 1], axis=-1).mean()
    assert abs(swapped["view_px"][1] - expected) < 1e-6
    expected_mm = 1000 * np.linalg.norm(p[frames] - truth["landmarks_3d"][frames, 0], axis=-1).mean()
    assert abs(swapped["mpjpe_mm"] - expected_mm) < 1e-6
