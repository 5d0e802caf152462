"""training.reference: the fixed mean hand that a trained network must beat."""

import json
import math

import numpy as np
import torch

from core.hand_model.rotations import axis_angle_to_matrix
from training import evaluate, metrics
from training.reference import MeanHand, mean_rotations


def test_mean_of_rotations_symmetric_about_one_is_that_one():
    centre = axis_angle_to_matrix(torch.tensor([[0.3, -0.2, 0.9]]))[0]
    turns = axis_angle_to_matrix(torch.tensor([[0.0, 0.0, 0.4], [0.0, 0.0, -0.4], [0.5, 0.0, 0.0], [-0.5, 0.0, 0.0]]))
    rotations = (centre @ turns)[:, None]                                  # (4, 1, 3, 3)
    mean = mean_rotations(rotations)[0]
    assert torch.allclose(mean, centre, atol=1e-5)
    assert math.isclose(float(torch.det(mean)), 1.0, abs_tol=1e-5)


def test_mean_hand_is_the_same_for_every_image_and_shaped_like_a_network():
    hand = MeanHand(count=200)
    out = hand(torch.randn(3, 3, 96, 96))
    assert out["joints_3d"].shape == (3, 21, 3) and out["keypoints_2d"].shape == (3, 21, 2)
    assert torch.equal(out["joints_3d"][0], out["joints_3d"][2])
    assert out["joints_3d"][0, 0].abs().max() == 0                           # root-relative
    assert out["keypoints_2d"].abs().max() <= 1.0                              # inside the crop


def test_reference_entry_scores_zero_on_data_that_is_the_mean_hand_moved(tmp_path, monkeypatch):
    """Ground truth = the mean hand turned, scaled and moved: Procrustes alignment undoes that, so the
    reference's PA-MPJPE is ~0 (computed independently here with metrics.pa_errors_mm too)."""
    joints = MeanHand()(torch.zeros(1, 3, 96, 96))["joints_3d"][0].numpy()
    rotation = axis_angle_to_matrix(torch.tensor([0.4, 1.0, -0.3])).numpy()
    moved = 1.1 * joints @ rotation.T + np.array([0.01, 0.02, 0.5])
    assert metrics.pa_errors_mm(joints[None], moved[None]).max() < 1e-3
    crop = {"image": torch.zeros(3, 96, 96), "keypoints_2d": torch.zeros(21, 2),
            "joints_3d": torch.as_tensor(moved - moved[:1], dtype=torch.float32), "vertices": torch.zeros(1, 3),
            "has_3d": True, "has_mesh": False, "is_left": False}
    monkeypatch.setitem(evaluate.RAW_SOURCES, "synthetic", lambda value: [crop] * int(value))
    monkeypatch.setattr(evaluate, "make_eval_transform", lambda size: (lambda raw: raw))
    out = tmp_path / "ref.json"
    assert evaluate.main(["--reference", "--data", "synthetic:3", "--json", str(out)]) == 0
    entry = json.loads(out.read_text())["models"][0]
    assert entry["arch"] == "reference" and entry["count"] == 3 and entry["pa_mpjpe_mm"] < 1e-2
