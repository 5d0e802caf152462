"""Synthetic multi-view samples (training/synth/multiview.py) and their scorer (training/multiview_eval.py).

The cameras are checked independently of the code that wrote them: the true keypoints, projected
with OpenCV's projectPoints from the written cameras.json, must land on each view's rendered hand.
The scorer is checked on hand-made predictions whose errors are known in advance.
"""

from __future__ import annotations

import json
import types

import cv2
import numpy as np
import pytest

from training.multiview_eval import evaluate_samples
from training.synth.multiview import MultiViewSynthesizer, read_sample, write_sample

VIEWS = 3


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mv") / "00000"
    write_sample(str(folder), *MultiViewSynthesizer(VIEWS, seed=11, size=160).render(0))
    return folder


def on_hand(folder, view: int, points: np.ndarray, shift=(0.0, 0.0, 0.0)) -> float:
    """Fraction of ``points`` (view 0 frame) that land on the view's hand mask (dilated 2 px), projected
    with cv2.projectPoints from the raw cameras.json entry (its t moved by ``shift`` metres)."""
    entry = json.loads((folder / "cameras.json").read_text())[view]
    rvec = cv2.Rodrigues(np.array(entry["R"]))[0]
    pixels = cv2.projectPoints(points, rvec, np.array(entry["t"]) + shift, np.array(entry["K"]), None)[0][:, 0]
    mask = cv2.imread(str(folder / f"view{view}_mask.png"), cv2.IMREAD_GRAYSCALE)
    mask = cv2.dilate(mask, np.ones((5, 5), np.uint8))
    height, width = mask.shape
    assert entry["image_size"] == [width, height]
    u, v = np.round(pixels).astype(int).T
    assert (u >= 0).all() and (u < width).all() and (v >= 0).all() and (v < height).all(), "hand leaves the picture"
    return float((mask[v, u] > 0).mean())


def test_truth_projects_onto_every_rendered_view(written):
    pictures, cameras, truth = read_sample(str(written))
    assert len(pictures) == VIEWS and pictures[0].shape == (160, 213, 3)
    assert np.allclose(cameras[0].R, np.eye(3)) and np.allclose(cameras[0].t, 0)
    centres = np.stack([c.centre for c in cameras])
    hand = truth["joints_3d"].mean(0)
    distance = np.linalg.norm(centres - hand, axis=1)
    assert ((distance > 0.3) & (distance < 1.1)).all()
    for v in range(VIEWS):
        assert on_hand(written, v, truth["joints_3d"]) >= 0.9, f"view {v}"
        assert on_hand(written, v, truth["landmarks_3d"]) >= 0.9, f"view {v}"
    # the check can fail: a camera 8 cm off no longer sees the keypoints on the hand
    assert on_hand(written, 1, truth["joints_3d"], shift=(0.08, 0.0, 0.0)) < 0.6
    # the written 2D truth is the projection of the 3D truth
    for v, camera in enumerate(cameras):
        assert np.abs(camera.project(truth["landmarks_3d"]) - truth["landmarks_2d"][v]).max() < 1e-3


def test_views_differ_by_realistic_angles(written):
    _, cameras, truth = read_sample(str(written))
    hand = truth["joints_3d"].mean(0)
    rays = np.stack([c.centre - hand for c in cameras])
    rays /= np.linalg.norm(rays, axis=1, keepdims=True)
    angle = np.degrees(np.arccos(np.clip(rays[0] @ rays[1], -1, 1)))
    assert 20 < angle < 110


def hand(joints, K, side):
    uvw = joints @ K.T
    return types.SimpleNamespace(joints_3d=joints, keypoints_2d=uvw[:, :2] / uvw[:, 2:], side=side)


def test_scorer_known_errors():
    rng = np.random.default_rng(0)
    K = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
    samples = []
    for s in range(3):
        joints = np.array([0.0, 0.0, 0.5]) + rng.uniform(-0.08, 0.08, (21, 3))
        truth = {"landmarks_3d": joints, "side": "right",
                 "landmarks_2d": np.stack([hand(joints, K, "right").keypoints_2d] * 3)}
        pictures = [np.full((4, 4, 3), s, np.uint8) for _ in range(3)]   # tell the samples apart
        samples.append((pictures, [types.SimpleNamespace(K=K)] * 3, truth))

    def by_identity(pictures, cameras):
        s = int(pictures[0][0, 0, 0])
        joints, k = samples[s][2]["landmarks_3d"], len(pictures)
        if k == 1:                                          # 10 mm too far: camera and wrist depth errors only
            return [hand(joints + [0, 0, 0.01], K, "right")]
        if k == 2:                                          # 10 % too large about the wrist
            return [hand(joints[0] + 1.1 * (joints - joints[0]), K, "right")]
        far = hand(joints + [0.3, 0, 0], K, "right")        # another hand, far away in the picture
        return [far] if s == 2 else [far, hand(joints, K, "left")]   # sample 2: missed; else exact, wrong side

    result = evaluate_samples(samples, [1, 2, 3], by_identity)
    assert result["same_hands"] == 2
    one, two, three = (result["per_k"][k] for k in ("1", "2", "3"))
    assert one["found"] == 3 and two["found"] == 3 and three["found"] == 2
    assert one["camera_mpjpe_mm"] == pytest.approx(10.0) and one["wrist_depth_mm"] == pytest.approx(10.0)
    assert one["rr_mpjpe_mm"] == pytest.approx(0.0, abs=1e-9) and one["pa_mpjpe_mm"] == pytest.approx(0.0, abs=1e-6)
    assert one["rr_depth_mm"] == pytest.approx(0.0, abs=1e-9) and one["side_right_pct"] == 100.0
    same = [samples[s][2]["landmarks_3d"] for s in (0, 1)]
    spread = np.mean([np.linalg.norm(j - j[0], axis=1).mean() for j in same])
    depth = np.mean([np.abs(j[:, 2] - j[0, 2]).mean() for j in same])
    assert two["rr_mpjpe_mm"] == pytest.approx(100.0 * spread) and two["camera_mpjpe_mm"] == pytest.approx(100.0 * spread)
    assert two["rr_depth_mm"] == pytest.approx(100.0 * depth) and two["wrist_depth_mm"] == pytest.approx(0.0, abs=1e-9)
    assert two["pa_mpjpe_mm"] == pytest.approx(0.0, abs=1e-6)
    assert three["camera_mpjpe_mm"] == pytest.approx(0.0, abs=1e-9) and three["side_right_pct"] == 0.0


def test_scorer_reports_view_counts_it_cannot_run():
    K = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
    joints = np.array([0.0, 0.0, 0.5]) + np.random.default_rng(1).uniform(-0.08, 0.08, (21, 3))
    truth = {"landmarks_3d": joints, "side": "left", "landmarks_2d": hand(joints, K, "left").keypoints_2d[None]}

    def estimate(pictures, cameras):
        if len(pictures) > 1:
            raise NotImplementedError("no multi-view fit here")
        return [hand(joints, K, "left")]

    result = evaluate_samples([([None, None], [None, None], truth)], [1, 2], estimate)
    assert result["per_k"]["1"]["found"] == 1 and result["per_k"]["1"]["side_right_pct"] == 100.0
    assert "skipped" in result["per_k"]["2"]


def test_clip_views_with_a_late_view(tmp_path):
    from core.multiview.cameras import load_cameras
    from training.synth.multiview_clips import write_multiview_clips

    write_multiview_clips(str(tmp_path), count=1, frames=3, views=2, offset=1, progress=False)
    folder = tmp_path / "clip_000"
    truth = np.load(folder / "truth.npz")
    assert truth["frame_offset"].tolist() == [0, -1] and truth["landmarks_3d"].shape[0] == 4   # times 0..3
    cameras = load_cameras(str(folder / "cameras.json"), views=2)
    for v in range(2):
        capture = cv2.VideoCapture(str(folder / f"view{v}.mp4"))
        assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
        capture.release()
        assert np.abs(cameras[v].project(truth["landmarks_3d"]) - truth["landmarks_2d"][v]).max() < 1e-2


def test_evaluate_command_line(tmp_path):
    from training.evaluate import main, parse_spec

    assert parse_spec(f"multiview:{tmp_path}") == ("multiview", str(tmp_path))
    with pytest.raises(SystemExit):
        main(["--data", "synthetic:5", "--views", "1", "2", "--json", str(tmp_path / "x.json")])   # --views needs multiview
    assert main(["--data", f"multiview:{tmp_path}", "--views", "1"]) == 1                         # no samples in it
