"""HAMR and baseline losses: zero (or minimal) for perfect predictions, positive otherwise,
gradients to every prediction tensor, flags and weights respected."""

import math

import pytest
import torch
import torch.nn.functional as F

from core.hand_model import HandLayer, PosePrior
from core.hand_model.rotations import axis_angle_to_matrix
from training.losses import (DEFAULT_WEIGHTS, BaselineLoss, HamrLoss, camera_from_2d3d, root_relative)
from core.networks.heatmaps import render_heatmaps
from training.silhouette import normalized_to_pixels, soft_silhouette

B, CROP = 3, 128


@pytest.fixture(scope="module")
def hand(open_right):
    layer = HandLayer(open_right)
    prior = PosePrior(open_right)
    pose = prior.sample(B, torch.Generator().manual_seed(0), global_orient=True)
    betas = torch.randn(B, 10, generator=torch.Generator().manual_seed(1)) * 0.5
    return layer, prior, pose, betas


def _perfect(hand):
    """A crop batch and the prediction that matches it exactly."""
    layer, _, pose, betas = hand
    out = layer(betas, pose)
    root = out.keypoints[:, :1]
    joints, vertices = out.keypoints - root, out.vertices - root
    camera = torch.tensor([[5.0, 0.05, -0.1], [6.0, -0.1, 0.0], [4.5, 0.0, 0.1]])
    keypoints = camera[:, None, :1] * joints[..., :2] + camera[:, None, 1:]
    projected = camera[:, None, :1] * vertices[..., :2] + camera[:, None, 1:]
    mask = (soft_silhouette(normalized_to_pixels(projected, CROP), layer.faces, CROP, sigma=0.01) > 0.5).float()
    batch = {"keypoints_2d": keypoints, "joints_3d": joints, "vertices": vertices, "mask": mask,
             "has_3d": torch.ones(B, dtype=torch.bool), "has_mask": torch.ones(B, dtype=torch.bool),
             "has_mesh": torch.ones(B, dtype=torch.bool), "pose": pose, "betas": betas,
             "is_left": torch.zeros(B, dtype=torch.bool)}
    step = {"joints_3d": joints, "keypoints_2d": keypoints, "camera": camera,
            "rotmats": axis_angle_to_matrix(pose), "betas": betas}
    pred = {"heatmaps": [render_heatmaps(keypoints, 32, 1.5), render_heatmaps(keypoints, 64, 1.5)],
            "vertices": vertices, "iterations": [dict(step), dict(step)], **step}
    return {k: v.detach() for k, v in batch.items()}, _detach(pred)


def _detach(pred):
    out = {}
    for key, value in pred.items():
        if isinstance(value, torch.Tensor):
            out[key] = value.detach().clone().requires_grad_()
        elif key == "heatmaps":
            out[key] = [v.detach().clone().requires_grad_() for v in value]
        else:
            out[key] = [{k: v.detach().clone().requires_grad_() for k, v in it.items()} for it in value]
    return out


def _loss(hand, weights=None, **kw):
    layer, prior = hand[0], hand[1]
    return HamrLoss(DEFAULT_WEIGHTS if weights is None else weights, prior, faces=layer.faces, **kw)


def _perturbed(pred):
    bad = _detach(pred)
    with torch.no_grad():
        for key in ("joints_3d", "keypoints_2d", "camera", "betas"):
            bad[key] += 0.05 * torch.randn_like(bad[key]) + 0.02
        bad["vertices"] += 0.002 * torch.randn_like(bad["vertices"]) + 0.02   # metres
        for step in bad["iterations"]:
            for key in step:
                step[key] += 0.05 * torch.randn_like(step[key])
        for h in bad["heatmaps"]:
            h += 0.1 * torch.rand_like(h)
        bad["rotmats"] = axis_angle_to_matrix(torch.randn(B, 16, 3)).requires_grad_()
    return bad


def test_terms_are_zero_for_a_perfect_prediction_and_positive_otherwise(hand):
    batch, pred = _perfect(hand)
    loss = _loss(hand)
    _, good = loss(pred, batch)
    _, bad = loss(_perturbed(pred), batch)
    for name in ("joints_3d", "keypoints_2d", "heatmaps", "camera", "pose_params", "shape_params"):
        assert good[name] < 1e-4 and bad[name] > 1e-3, (name, good[name], bad[name])
    assert good["silhouette"] < 0.02 < bad["silhouette"]
    assert good["pose_prior"] * 5 < bad["pose_prior"]            # natural poses vs random rotations
    assert good["shape_prior"] == pytest.approx(float((hand[3] ** 2).sum(-1).mean()), rel=1e-5)
    assert set(good) == {"joints_3d", "keypoints_2d", "heatmaps", "pose_prior", "shape_prior", "camera", "silhouette",
                         "pose_params", "shape_params", "total"}


@pytest.mark.parametrize("every_iteration", [True, False])
def test_gradients_reach_every_prediction_tensor(hand, every_iteration):
    batch, pred = _perfect(hand)
    pred = _perturbed(pred)
    loss = _loss(hand, dict(DEFAULT_WEIGHTS, pose_limits=1.0), every_iteration=every_iteration)
    loss(pred, batch)[0].backward()
    tensors = [pred[k] for k in ("camera", "vertices", "betas", "rotmats")] + pred["heatmaps"]
    if every_iteration:
        tensors += [step[k] for step in pred["iterations"] for k in step]
    else:
        tensors += [pred["joints_3d"], pred["keypoints_2d"]]
    for tensor in tensors:
        assert tensor.grad is not None and torch.isfinite(tensor.grad).all() and tensor.grad.abs().sum() > 0


def test_iterations_final_only_and_flags(hand):
    batch, pred = _perfect(hand)
    weights = {"joints_3d": 1.0, "camera": 1.0, "keypoints_2d": 1.0}
    with torch.no_grad():
        pred["iterations"][0]["joints_3d"][:, 1:] += 0.01          # only the first iteration is off
    every = _loss(hand, weights)(pred, batch)[1]
    final = _loss(hand, weights, every_iteration=False)(pred, batch)[1]
    assert every["joints_3d"] == pytest.approx(10.0 * 20 / 21 / 2, rel=1e-4)   # mean over the 2 iterations
    assert final["joints_3d"] < 1e-4
    # has_3d: a sample with garbage 3D targets is ignored; none valid -> 0
    batch = dict(batch, joints_3d=batch["joints_3d"].clone())
    batch["joints_3d"][1] += torch.randn(21, 3)
    batch["has_3d"] = torch.tensor([True, False, True])
    assert final["joints_3d"] < 1e-4
    assert _loss(hand, weights, every_iteration=False)(pred, batch)[1]["joints_3d"] < 1e-4
    batch["has_3d"] = torch.zeros(B, dtype=torch.bool)
    terms = _loss(hand, weights, every_iteration=False)(pred, batch)[1]
    assert terms["joints_3d"] == 0 and terms["camera"] == 0


def test_silhouette_respects_has_mask_and_zero_weights_skip_terms(hand):
    batch, pred = _perfect(hand)
    bad = _perturbed(pred)
    batch["mask"] = 1.0 - batch["mask"]                             # wrong masks ...
    batch["has_mask"] = torch.zeros(B, dtype=torch.bool)            # ... that are not real
    total, terms = _loss(hand, {"silhouette": 1.0, "joints_3d": 0.0})(bad, batch)
    assert set(terms) == {"silhouette", "total"} and terms["silhouette"] == 0
    total.backward()                                               # still a graph
    with pytest.raises(ValueError, match="unknown"):
        _loss(hand, {"L3D": 1.0})
    with pytest.raises(ValueError, match="faces"):
        HamrLoss({"silhouette": 1.0}, hand[1])


def test_parameter_losses_by_hand_and_only_where_the_true_pose_is_known(hand):
    """One joint turned by 0.5 rad about z: |R - I|^2 = 4 (1 - cos 0.5) over 16 x 9 matrix entries;
    betas off by 0.3 in one of 10 -> 0.09 / 10. Left-hand and mesh-less samples are ignored."""
    batch, pred = _perfect(hand)
    weights = {"pose_params": 1.0, "shape_params": 1.0}
    turn = axis_angle_to_matrix(torch.tensor([0.0, 0.0, 0.5]))
    with torch.no_grad():
        for step in pred["iterations"]:
            step["rotmats"][0, 7] = turn @ step["rotmats"][0, 7]
            step["betas"][0, 3] += 0.3
    terms = _loss(hand, weights)(pred, batch)[1]
    assert terms["pose_params"] == pytest.approx(4 * (1 - math.cos(0.5)) / (16 * 9) / B, rel=1e-4)
    assert terms["shape_params"] == pytest.approx(0.09 / 10 / B, rel=1e-4)
    for flag, value in (("is_left", True), ("has_mesh", False)):
        marked = dict(batch, **{flag: torch.tensor([value, not value, not value])})
        terms = _loss(hand, weights)(pred, marked)[1]
        assert terms["pose_params"] < 1e-6 and terms["shape_params"] < 1e-6, flag


def test_camera_from_2d3d_recovers_a_known_camera():
    joints = torch.randn(4, 21, 3) * 0.05
    camera = torch.tensor([[5.0, 0.1, -0.2], [0.5, 0.0, 0.0], [12.0, -0.3, 0.4], [3.0, 1.0, 1.0]])
    keypoints = camera[:, None, :1] * joints[..., :2] + camera[:, None, 1:]
    torch.testing.assert_close(camera_from_2d3d(keypoints, joints), camera, atol=1e-5, rtol=1e-5)


def test_baseline_loss_is_l1_in_mm_on_root_relative_joints():
    target = torch.randn(2, 21, 3) * 0.05
    pred = (target + 0.3).requires_grad_()                        # a pure translation: 0 after rooting
    batch = {"joints_3d": target, "has_3d": torch.tensor([True, True])}
    total, terms = BaselineLoss()({"joints_3d": pred}, batch)
    assert total.item() < 1e-4
    moved = root_relative(target).clone()
    moved[:, 5:, 0] += 0.002                                       # 2 mm on x of 16 joints
    total, terms = BaselineLoss()({"joints_3d": moved.requires_grad_()}, batch)
    assert total.item() == pytest.approx(2.0 * 16 / 63, rel=1e-4) and terms["total"] == total.detach()
    total.backward()
    assert F.l1_loss(moved.grad, torch.zeros_like(moved.grad)) > 0


def test_baseline_loss_trains_the_camera_too():
    joints = torch.randn(2, 21, 3) * 0.05
    joints = joints - joints[:, :1]
    camera = torch.tensor([[5.0, 0.1, -0.2], [4.0, 0.0, 0.3]])
    batch = {"joints_3d": joints, "keypoints_2d": camera[:, None, :1] * joints[..., :2] + camera[:, None, 1:],
             "has_3d": torch.tensor([True, True])}
    total, terms = BaselineLoss()({"joints_3d": joints, "camera": camera}, batch)
    assert total.item() < 1e-4 and terms["camera"].item() < 1e-5
    wrong = (camera + torch.tensor([1.0, 0.0, 0.0])).requires_grad_()
    total, terms = BaselineLoss(camera_weight=2.0)({"joints_3d": joints, "camera": wrong}, batch)
    assert terms["camera"].item() == pytest.approx(1.0 / 3, rel=1e-4) and total.item() == pytest.approx(2.0 / 3, rel=1e-4)
    total.backward()
    assert wrong.grad[:, 0].gt(0).all()
