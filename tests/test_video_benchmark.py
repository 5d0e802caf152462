"""The video benchmark (issue 19): rendered clips carry consistent truth, the scoring counts what it
says (checked on hand-made tracks against values computed here by hand), and frames that fail to
decode are reported with their count and the first source frame number."""

from __future__ import annotations

import contextlib
import types

import cv2
import numpy as np
import pytest

from core.engine.run import VideoOptions, undecoded_warning, video_frames
from training.video_eval import score_clip

from .test_bad_input import damage_frames, write_video


@pytest.fixture(scope="module")
def two_hands(tmp_path_factory):
    pytest.importorskip("moderngl")
    from training.synth.sequences import SequenceSynthesizer, write_clip
    images, truth = SequenceSynthesizer(seed=3).render(0, 20)
    stem = str(tmp_path_factory.mktemp("clip") / "clip_000")
    write_clip(stem, images, truth)
    return images, truth, stem


def test_rendered_clip_truth_is_consistent(two_hands):
    images, truth, stem = two_hands
    assert images.shape == (20, 480, 640, 3)
    assert list(truth["sides"]) == ["left", "right"]
    K = truth["K"].astype(np.float64)
    for points, pixels in (("landmarks_3d", "landmarks_2d"), ("joints_3d", "keypoints_2d")):
        X = truth[points].astype(np.float64)                                     # (F, H, 21, 3)
        u = K[0, 0] * X[..., 0] / X[..., 2] + K[0, 2]
        v = K[1, 1] * X[..., 1] / X[..., 2] + K[1, 2]
        np.testing.assert_allclose(truth[pixels], np.stack([u, v], -1), atol=1e-2)
    wrist = truth["landmarks_3d"][:, :, 0]                                       # (F, H, 3)
    own = np.linalg.norm(wrist[1:] - wrist[:-1], axis=-1)                        # (F-1, H) to its own last place
    other = np.linalg.norm(wrist[1:] - wrist[:-1, ::-1], axis=-1)                # ... to the other hand's
    assert (own < other).all() and own.max() < 0.08                             # no jumps: identities held
    accel = np.linalg.norm(truth["joints_3d"][:-2] - 2 * truth["joints_3d"][1:-1] + truth["joints_3d"][2:], axis=-1)
    assert accel.max() < 0.06              # smooth: a teleport or swapped hand would be > 0.1 m/frame^2 here
    assert np.linalg.norm(wrist[:, 0] - wrist[:, 1], axis=-1).min() < 0.15       # the hands come close
    assert np.sign(wrist[0, 0, 0] - wrist[0, 1, 0]) != np.sign(wrist[-1, 0, 0] - wrist[-1, 1, 0])  # and cross
    # the rendered hand lies under its true keypoints: a hand pixel differs from the picture far away
    f, h = 0, 0
    x, y = truth["keypoints_2d"][f, h, 9].round().astype(int)                    # middle knuckle
    assert truth["visible"][f, h]
    patch = images[f, y - 2:y + 3, x - 2:x + 3].reshape(-1, 3).mean(0)
    corner = images[f, :20, :20].reshape(-1, 3).mean(0)
    assert np.abs(patch - corner).max() > 5
    video = cv2.VideoCapture(stem + ".mp4")
    count = 0
    while video.read()[0]:
        count += 1
    assert count == 20 and video.get(cv2.CAP_PROP_FPS) == pytest.approx(30)
    np.testing.assert_array_equal(np.load(stem + "_K.npy"), truth["K"])


def fake_track(frames, joints_3d, keypoints_2d):
    return types.SimpleNamespace(frame_index=np.asarray(frames), valid=np.ones(len(frames), bool),
                                 joints_3d=joints_3d, keypoints_2d=keypoints_2d)


def test_scores_on_hand_made_tracks():
    """One true hand over 10 frames; two tracks (frames 0-4 and 5-8) whose fingertip drifts by
    c t^2 from the truth: one identity switch, two tracks for the hand, frame 9 lost, and an
    acceleration error of |2c| on one keypoint of 21."""
    frames, c = 10, 0.001                                        # metres per frame^2
    rng = np.random.default_rng(0)
    base = rng.normal(0, 0.03, (21, 3)) + [0, 0, 0.5]
    t = np.arange(frames, dtype=np.float64)
    true_3d = base[None] + (0.01 * t)[:, None, None] * np.array([1.0, 0.0, 0.0])      # gliding, no acceleration
    true_2d = 600 * true_3d[..., :2] / true_3d[..., 2:] + 320
    truth = {"visible": np.ones((frames, 1), bool), "landmarks_3d": true_3d[:, None],
             "landmarks_2d": true_2d[:, None]}
    est = true_3d.copy()
    est[:, 8, 1] += c * t ** 2                                   # index fingertip: accelerates by 2c
    tracks = [fake_track(range(0, 5), est[0:5], true_2d[0:5]), fake_track(range(5, 9), est[5:9], true_2d[5:9])]
    entry = score_clip(truth, tracks)
    assert entry["id_switches"] == 1 and entry["tracks_per_hand"] == [2]
    assert entry["frames_visible"] == 10 and entry["frames_lost"] == 1 and entry["extra_tracks"] == 0
    assert entry["accel_error_mm"] == pytest.approx(1000 * 2 * c / 21)
    assert entry["accel_truth_mm"] == pytest.approx(0, abs=1e-9)
    drift = 1000 * c * t[:9] ** 2 / 21                           # per-frame MPJPE: the fingertip's drift
    assert entry["mpjpe_mm"] == pytest.approx(drift.mean())
    # an estimate far from the hand is not matched to it: the frame is lost, the track extra
    far = fake_track([9], est[9:10] + 1, true_2d[9:10] + 300)
    assert score_clip(truth, tracks + [far])["extra_tracks"] == 1


def test_a_hidden_hands_track_is_paired_with_it_not_with_the_hand_in_front():
    """Two hands, the second behind the first in frames 3-5 (not visible), its track filled there on its
    true place, 10 px from the front hand's landmarks, while the front hand's own track is 30 px off:
    each track is paired with its own hand, so no identity switch and nothing lost."""
    frames = 9
    rng = np.random.default_rng(1)
    front = rng.uniform(200, 300, (21, 2))
    true_2d = np.stack([np.repeat(front[None], frames, 0), np.repeat(front[None] + 200, frames, 0)], 1)  # (F, 2, 21, 2)
    true_2d[3:6, 1] = front + 10                                 # behind the front hand
    visible = np.ones((frames, 2), bool)
    visible[3:6, 1] = False
    true_3d = np.concatenate([true_2d / 600, np.full((frames, 2, 21, 1), 0.5)], -1)
    truth = {"visible": visible, "landmarks_3d": true_3d, "landmarks_2d": true_2d}
    own = fake_track(range(frames), true_3d[:, 0], true_2d[:, 0] + [30.0, 0.0])
    hidden = fake_track(range(frames), true_3d[:, 1], true_2d[:, 1])
    entry = score_clip(truth, [own, hidden])
    assert entry["id_switches"] == 0 and entry["tracks_per_hand"] == [1, 1]
    assert entry["frames_visible"] == 2 * frames - 3 and entry["frames_lost"] == 0


def test_a_hidden_hand_does_not_take_a_visible_hands_only_track():
    """One track, 12 px off the front hand, while the hand hidden behind it lies 10 px from the track:
    the track is the front hand's (a hidden hand is paired only where that costs no visible pair)."""
    frames = 3
    front = np.random.default_rng(2).uniform(200, 300, (21, 2))
    true_2d = np.stack([np.repeat(front[None], frames, 0), np.repeat(front[None] + [22.0, 0.0], frames, 0)], 1)
    visible = np.array([[True, False]] * frames)
    true_3d = np.concatenate([true_2d / 600, np.full((frames, 2, 21, 1), 0.5)], -1)
    truth = {"visible": visible, "landmarks_3d": true_3d, "landmarks_2d": true_2d}
    track = fake_track(range(frames), true_3d[:, 0], true_2d[:, 0] + [12.0, 0.0])   # 10 px from the hidden hand
    entry = score_clip(truth, [track])
    assert entry["frames_visible"] == frames and entry["frames_lost"] == 0


def test_undecodable_frames_are_counted_with_the_first_index(tmp_path):
    path = tmp_path / "damaged.avi"
    write_video(path, frames=12)
    damage_frames(path, (2, 5, 6))
    video = cv2.VideoCapture(str(path))
    count = int(video.get(cv2.CAP_PROP_FRAME_COUNT))
    no_timing = lambda name: contextlib.nullcontext()            # noqa: E731  (only the frame reader: no engine)
    used = [index for index, _ in video_frames(video, count, VideoOptions(), no_timing)]
    assert used == [0, 1, 3, 4, 7, 8, 9, 10, 11]                 # source frame numbers kept
    assert undecoded_warning(str(path), range(count), used) == (
        f"{path}: 3 of 12 frames could not be decoded and were skipped (the first: frame 2; 9 used)")
    assert undecoded_warning(str(path), range(count), list(range(12))) is None
    assert "of 2 frames" in undecoded_warning("v", range(5, 9, 2), [5])   # --frame-start/--step count only theirs


def test_motion_blur_samples_the_open_shutter():
    pytest.importorskip("moderngl")
    from training.synth.motion import HandScript
    from training.synth.sequences import hand_at, shutter_times
    times = shutter_times(5, 4)                                                  # 4 renders per frame
    np.testing.assert_allclose(times[2], [1.8125, 1.9375, 2.0625, 2.1875])      # 2 +- a quarter frame, evenly
    assert times.min() == 0 and times.max() == 4                                 # kept inside the clip
    np.testing.assert_array_equal(shutter_times(5, 1)[:, 0], np.arange(5))       # one render: the frame itself
    # a joint turning 0.2 rad a frame about z, the wrist moving 1 cm a frame along x
    pose = np.zeros((5, 16, 3))
    pose[:, 3, 2] = 0.2 * np.arange(5)
    wrist = np.stack([0.01 * np.arange(5), np.zeros(5), np.full(5, 0.5)], 1)
    hand = hand_at(HandScript("right", np.zeros(10), pose, wrist), np.array([1.0, 2.25, 3.5]))
    np.testing.assert_allclose(hand.pose[:, 3, 2], [0.2, 0.45, 0.7], atol=1e-9)
    np.testing.assert_allclose(hand.pose[:, [0, 1, 2, 4]], 0, atol=1e-12)
    np.testing.assert_allclose(hand.wrist[:, 0], [0.01, 0.0225, 0.035], atol=1e-12)


def test_motion_blur_blurs_a_moving_hand_and_keeps_the_truth(two_hands):
    from training.synth.sequences import SequenceSynthesizer
    images, truth, _ = two_hands
    blurred, blurred_truth = SequenceSynthesizer(seed=3, motion_blur=4).render(0, 20)
    for key in ("landmarks_2d", "joints_3d", "pose"):
        np.testing.assert_array_equal(blurred_truth[key], truth[key])
    speed = np.linalg.norm(np.diff(truth["landmarks_2d"], axis=0), axis=-1).mean(-1)      # (F-1, H) px/frame
    fast, hand = np.unravel_index(np.argmax(speed), speed.shape)
    fast += 1
    (x0, y0), (x1, y1) = truth["landmarks_2d"][fast, hand].min(0).astype(int), truth["landmarks_2d"][fast, hand].max(0).astype(int)
    gray = [cv2.cvtColor(i[fast], cv2.COLOR_BGR2GRAY)[max(y0, 0):y1, max(x0, 0):x1].astype(np.float64)
            for i in (images, blurred)]                                          # the fastest hand, in its fastest frame
    sharpness = [cv2.Laplacian(g, cv2.CV_64F).var() for g in gray]
    assert speed.max() > 5 and sharpness[1] < 0.8 * sharpness[0]    # softer with an open shutter
    assert np.abs(gray[0] - gray[1]).mean() < 20                     # ... but the same hand there


def test_video_views_draws_each_capture_on_its_frames(two_hands, tmp_path):
    """A capture made from the clip's own truth: its strip shows the hands where the truth puts them
    (pixels change under the true keypoints and nowhere far from them), and the command writes a PNG."""
    import torch
    from core.capture import Capture, save_capture, track_from_layer
    from core.hand_model import HandLayer, load_hand_model
    from training.video_views import main, strip_rows
    images, truth, stem = two_hands
    tracks = []
    for h, side in enumerate(truth["sides"]):
        layer = HandLayer(load_hand_model("open", str(side)), torch.float32)
        tracks.append(track_from_layer(layer, truth["betas"][h], truth["pose"][:, h], truth["transl"][:, h], truth["K"]))
    capture = Capture(hand_model="open", source_path=stem + ".mp4", image_size=np.array([640, 480]), K=truth["K"],
                      fps=30.0, tracks=tracks)
    path = str(tmp_path / "capture.npz")
    save_capture(capture, path)
    np.testing.assert_allclose(tracks[0].keypoints_2d, truth["landmarks_2d"][:, 0], atol=0.05)
    (strip,) = strip_rows(stem + ".mp4", [capture], [3])
    raw = cv2.VideoCapture(stem + ".mp4")
    for _ in range(4):
        frame = raw.read()[1]
    raw.release()
    tile = cv2.resize(frame, strip.shape[1::-1], interpolation=cv2.INTER_AREA)
    changed = np.abs(strip.astype(int) - tile).max(-1) > 30                      # (h, w) drawn pixels
    scale = strip.shape[1] / 640
    for h in range(2):
        if truth["visible"][3, h]:
            x, y = (truth["landmarks_2d"][3, h, 9] * scale).round().astype(int)
            assert changed[y - 2:y + 3, x - 2:x + 3].any()                       # the knuckle is drawn over
    hands = truth["landmarks_2d"][3].reshape(-1, 2) * scale
    ys, xs = np.nonzero(changed[30:])                                            # (below the frame label)
    distance = np.min(np.linalg.norm(np.stack([xs, ys + 30], 1)[:, None] - hands[None], axis=-1), axis=1)
    assert np.percentile(distance, 99) < 40                                      # drawn only around the hands
    out = str(tmp_path / "views.png")
    assert main([stem + ".mp4", path, "--truth", stem + "_truth.npz", "--frames", "2", "5", "--out", out]) == 0
    assert cv2.imread(out).shape[1] == 2 * 320                                # two strip frames wide
    with pytest.raises(SystemExit):
        main([stem + ".mp4", stem + "_K.npy", "--out", out])                    # not a capture: a clear error


def test_a_landmark_behind_the_other_hand_is_hidden():
    pytest.importorskip("moderngl")
    from training.synth.sequences import hidden_behind
    K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
    square = np.array([[-0.05, -0.05, 0.4], [0.05, -0.05, 0.4], [0.05, 0.05, 0.4], [-0.05, 0.05, 0.4]])   # 10 cm, 40 cm away
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    points = np.array([[0.0, 0.0, 0.6],       # straight behind it: hidden
                       [0.0, 0.0, 0.3],       # in front of it
                       [0.0, 0.0, 0.405],     # behind, but closer than the margin (1 cm)
                       [0.2, 0.0, 0.6],       # behind the plane, beside the square: seen
                       [0.04, -0.04, 0.8]])   # behind a corner of the square (its projection shrinks with depth)
    np.testing.assert_array_equal(hidden_behind(points, square, faces, K), [True, False, False, False, True])
