"""The engine's least-squares fit (core.engine.least_squares, core.hand_model.keypoint_jacobian):
its points against the torch hand layer, its Jacobians against finite differences of that layer,
its energy against the definition written out here in torch, and its minimum against a long
L-BFGS run of that torch energy on synthetic hands."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.engine.fitting import HandFitter, project_points
from core.hand_model import HandLayer, PosePrior
from core.hand_model.keypoint_jacobian import KeypointJacobian
from core.hand_model.landmark_points import LandmarkPoints
from core.hand_model.model import KEYPOINT_BONES

from .conftest import random_hand_model

FOCAL = 600.0
K = np.array([[FOCAL, 0, 320.0], [0, FOCAL, 240.0], [0, 0, 1]])


def torch_points(layer, landmarks, pose, betas, weight) -> np.ndarray:
    """(N, 21, 3) landmark points minus the wrist keypoint, by the torch layer (float64)."""
    out = layer(torch.as_tensor(betas), torch.as_tensor(pose), keypoints_only=True)
    return (landmarks(out, torch.as_tensor(weight)) - out.keypoints[:, :1]).numpy()


@pytest.mark.parametrize("model_name", ["open", "toy"])
def test_points_and_jacobians_match_the_torch_layer(model_name, open_right):
    model = open_right if model_name == "open" else random_hand_model(seed=2, correctives=False)
    layer, landmarks = HandLayer(model, torch.float64), LandmarkPoints("right").double()
    kinematics = KeypointJacobian(layer, landmarks)
    rng = np.random.default_rng(0)
    pose, betas, weight = rng.normal(0, 0.5, (3, 16, 3)), rng.normal(0, 1, (3, 10)), np.array([1.0, 0.0, 0.7])
    pose[1, 3] = 0.0                                         # a joint at the zero rotation
    points, d_pose, d_betas = kinematics.points(pose, betas, weight)
    np.testing.assert_allclose(points, torch_points(layer, landmarks, pose, betas, weight), atol=1e-12)
    eps = 1e-6
    for column in range(48):
        step = np.zeros(48)
        step[column] = eps
        step = step.reshape(16, 3)
        numeric = (torch_points(layer, landmarks, pose + step, betas, weight)
                   - torch_points(layer, landmarks, pose - step, betas, weight)) / (2 * eps)
        np.testing.assert_allclose(d_pose[..., column], numeric, atol=1e-7)
    for column in range(10):
        step = np.zeros(10)
        step[column] = eps
        numeric = (torch_points(layer, landmarks, pose, betas + step, weight)
                   - torch_points(layer, landmarks, pose, betas - step, weight)) / (2 * eps)
        np.testing.assert_allclose(d_betas[..., column], numeric, atol=1e-7)
    rest = layer(torch.as_tensor(betas)).rest_joints[:, 0].numpy()
    np.testing.assert_allclose(kinematics.rest_wrist(betas), rest, atol=1e-12)


def test_correctives_are_in_the_points():
    model = random_hand_model(seed=4, correctives=True)
    layer, landmarks = HandLayer(model, torch.float64), LandmarkPoints("right").double()
    rng = np.random.default_rng(1)
    pose, betas, weight = rng.normal(0, 0.4, (2, 16, 3)), rng.normal(0, 1, (2, 10)), np.ones(2)
    points = KeypointJacobian(layer, landmarks).points(pose, betas, weight, derivatives=False)[0]
    np.testing.assert_allclose(points, torch_points(layer, landmarks, pose, betas, weight), atol=1e-12)


def reference_energy(fitter: HandFitter, pose, betas, wrist, targets, target_weights, evidence, box, huber=0.05):
    """The fit's energy written out from its definition, in torch (differentiable): the weighted mean
    Huber distance of the projected landmark points to the targets in box sides, the bones' 1 - cos
    to the evidence's bones, the pose prior's score and |betas|^2."""
    w = fitter.weights
    points = fitter.landmarks(pose, betas, wrist)
    Kt = torch.as_tensor(K, dtype=points.dtype)
    error = (project_points(points, Kt) - targets).norm(dim=-1) / box[:, None]
    loss = torch.where(error < huber, 0.5 * error ** 2, huber * (error - 0.5 * huber))
    loss_2d = (loss * target_weights).sum(1) / target_weights.sum(1)
    start, end = (list(i) for i in zip(*KEYPOINT_BONES))

    def directions(p):
        bones = p[:, end] - p[:, start]
        return bones / bones.norm(dim=-1, keepdim=True)
    cosine = (directions(points) * directions(evidence)).sum(-1)
    return (w["keypoints_2d"] * loss_2d / huber ** 2 + w["bones_3d"] * 100.0 * (1 - cosine).mean(1)
            + w["pose_prior"] * fitter.prior.score(pose) + w["shape_prior"] * (betas ** 2).sum(1))


@pytest.fixture(scope="module")
def synthetic(open_right):
    """A fitter (float64) and 4 synthetic hands: true pose from the prior, landmarks projected with
    2 px noise and one landmark 40 px off (the Huber's linear side), evidence from a noisy pose, and
    a start 0.25 rad and 2 cm off."""
    layer, prior = HandLayer(open_right, torch.float64), PosePrior(open_right).double()
    fitter = HandFitter(layer, prior).double()
    rng = np.random.default_rng(7)
    truth = prior.sample(4, torch.Generator().manual_seed(7)).double()
    truth[:, 0] = torch.as_tensor(rng.normal(0, 0.3, (4, 3))) + torch.tensor([2.9, 0.0, 0.0])
    betas = torch.as_tensor(rng.normal(0, 0.5, (4, 10)))
    wrist = torch.as_tensor([[0.02, 0.05, 0.5], [-0.05, 0.0, 0.6], [0.0, -0.03, 0.45], [0.04, 0.02, 0.7]])
    with torch.no_grad():
        points = fitter.landmarks(truth, betas, wrist)
        pixels = project_points(points, torch.as_tensor(K)).numpy() + rng.normal(0, 2.0, (4, 21, 2))
        pixels[:, 8] += 40.0
        evidence = fitter.landmarks(truth + torch.as_tensor(rng.normal(0, 0.1, (4, 16, 3))), betas, torch.zeros(4, 3)).numpy()
    box = np.ptp(pixels, axis=1).max(1)
    start = (truth.numpy() + rng.normal(0, 0.25, (4, 16, 3)), np.zeros((4, 10)), wrist.numpy() + rng.normal(0, 0.02, (4, 3)))
    return fitter, start, pixels, np.ones((4, 21)), evidence, box


def test_energy_and_gradient_match_the_definition(synthetic):
    fitter, (pose, betas, wrist), targets, weights, evidence, box = synthetic
    energy = fitter.energy
    problem = energy.problem(np.repeat(K[None], 4, 0), targets, weights, evidence, box, np.ones(4))
    x = energy.join(pose, betas, wrist)
    at = energy.evaluate(x, problem)
    xt = torch.as_tensor(x).requires_grad_()
    depth = xt[:, -1:].exp()
    wrist_t = torch.cat([xt[:, -3:-1] * depth, depth], 1)
    reference = reference_energy(fitter, xt[:, :48].reshape(-1, 16, 3), xt[:, 48:-3], wrist_t, torch.as_tensor(targets),
                                 torch.as_tensor(weights), torch.as_tensor(evidence), torch.as_tensor(box))
    np.testing.assert_allclose(at["energy"], reference.detach().numpy(), rtol=1e-9)
    reference.sum().backward()
    gradient = np.einsum("nrp,nr->np", at["J"], at["r"])      # J^T r: the Huber reweighted, the same gradient
    np.testing.assert_allclose(gradient, xt.grad.numpy(), rtol=1e-6, atol=1e-8)


def test_the_fit_reaches_a_minimum_at_least_as_low_as_lbfgs(synthetic):
    fitter, (pose, betas, wrist), targets, weights, evidence, box = synthetic
    Ks = np.repeat(K[None], 4, 0)
    fit = fitter.fit(pose, betas, wrist, Ks, targets, weights, evidence, box, steps=10)
    # the reference: 300 L-BFGS iterations on the torch energy, from the same start
    x = torch.as_tensor(fitter.energy.join(pose, betas, wrist)).requires_grad_()
    optimizer = torch.optim.LBFGS([x], max_iter=300, tolerance_grad=1e-10, tolerance_change=1e-14,
                                  line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        depth = x[:, -1:].exp()
        loss = reference_energy(fitter, x[:, :48].reshape(-1, 16, 3), x[:, 48:-3], torch.cat([x[:, -3:-1] * depth, depth], 1),
                                torch.as_tensor(targets), torch.as_tensor(weights), torch.as_tensor(evidence),
                                torch.as_tensor(box)).sum()
        loss.backward()
        return loss
    optimizer.step(closure)
    reference = fitter.energy.evaluate(x.detach().numpy(), fitter.energy.problem(Ks, targets, weights, evidence, box,
                                                                                np.ones(4)), jacobian=False)
    assert np.all(fit.energy <= reference["energy"] * 1.002 + 1e-6)
    # and it is a minimum of the torch energy: its gradient there is a thousandth of the start's
    def gradient(at):
        xt = torch.as_tensor(at).requires_grad_()
        depth = xt[:, -1:].exp()
        reference_energy(fitter, xt[:, :48].reshape(-1, 16, 3), xt[:, 48:-3], torch.cat([xt[:, -3:-1] * depth, depth], 1),
                         torch.as_tensor(targets), torch.as_tensor(weights), torch.as_tensor(evidence),
                         torch.as_tensor(box)).sum().backward()
        return xt.grad.norm(dim=1).numpy()
    assert np.all(gradient(fitter.energy.join(fit.pose, fit.betas, fit.wrist)) < 1e-3 * gradient(fitter.energy.join(pose, betas, wrist)))
    # the default few steps get within 1% of that minimum from this start
    quick = fitter.fit(pose, betas, wrist, Ks, targets, weights, evidence, box)
    assert np.all(quick.energy <= reference["energy"] * 1.01 + 1e-6)
    assert np.all(quick.energy < fitter.fit(pose, betas, wrist, Ks, targets, weights, evidence, box, steps=0).energy)


def test_command_line_fit_steps_are_the_engines():
    from core import cli
    from core.engine.fitting import FIT_STEPS
    parser = cli.build_parser()
    for command in (["estimate", "x.jpg", "-o", "out"], ["live", "0"]):
        assert parser.parse_args(command).fit_steps == FIT_STEPS
