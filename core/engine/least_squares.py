"""The engine's fit as a least-squares problem, solved by batched Levenberg-Marquardt (numpy).

What is minimised, per hand (``FitEnergy.evaluate``; weights in ``core.engine.fitting.WEIGHTS``):
  w_2d / delta^2 * sum_vk c_vk huber(e_vk)       e_vk: landmark point k's projection into view v from its
                                                  2D target, in that view's hand-box sides; c_vk the target
                                                  weights (times the view's weight) over their sum
  + w_3d * 100 * mean over the 20 bones of (1 - cos(bone, evidence bone))
  + w_pose * prior.score(pose) + w_shape * |betas|^2
The points live in one reference camera's frame; view v sees R_v p + t_v through K_v (one view:
R = I, t = 0, the single-camera fit; several calibrated views: core.multiview.fit).
The parameters x (N, P) of each hand are [pose (48, axis-angle), betas (S), wrist ray x/z, y/z, log z]:
steps of one size move the wrist evenly in the image and in depth.

Every term is a sum of squares (1 - cos = |u - v|^2 / 2 for unit vectors; the prior is quadratic in
the pose plus squared limit violations), so Gauss-Newton applies; the Huber term is reweighted at
each step (IRLS: weight 1 near, delta / e far, whose gradient is the Huber's). Each step solves
(J^T J + lambda diag(J^T J)) dx = -J^T r for three dampings at once and keeps, per hand, the one
whose energy is lowest, if it is lower than now. With analytic Jacobians
(``core.hand_model.keypoint_jacobian``) a step costs about a millisecond for a few hands on one core;
the Adam fit this replaced took 30 steps of torch autograd (~4 ms each) to get less far.
"""

from __future__ import annotations

import numpy as np
import torch

from core.hand_model.model import KEYPOINT_BONES

HUBER = 0.05                         # of the hand box side: the 2D term is quadratic below, linear above
DAMPINGS = np.array([0.1, 1.0, 10.0])   # tried at once each step, times the hand's current lambda
START_DAMPING = 1e-3
BONE_START, BONE_END = (list(index) for index in zip(*KEYPOINT_BONES))


def unit(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(..., 3) -> (unit vectors, lengths clamped at 1e-9)."""
    length = np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)
    return v / length, length


class FitEnergy:
    """Residuals, Jacobians and energy of the fit (see the module docstring) for a batch of hands.

    ``kinematics``: a ``KeypointJacobian``; ``prior``: the torch ``PosePrior`` (its buffers are read once);
    ``weights``: the term weights (keypoints_2d, bones_3d, pose_prior, shape_prior).
    """

    def __init__(self, kinematics, prior, weights: dict):
        def array(t):
            return t.detach().cpu().double().numpy()
        self.kinematics, self.weights = kinematics, weights
        self.frames = array(prior.frames)[1:]                               # (15, 3, 3) columns flex, abd, twist
        self.mean, self.std = array(prior.mean)[1:], array(prior.std)[1:]   # (15, 3)
        self.lower, self.upper = array(prior.lower)[1:], array(prior.upper)[1:]
        self.limit_weight = float(prior.limit_weight)
        self.num_betas = kinematics.joint_dirs.shape[-1]

    def problem(self, K, targets, target_weights, evidence_3d, box_side, from_landmarks) -> dict:
        """The data of N hands seen by one camera each: K (N, 3, 3), targets (N, 21, 2) pixels,
        target_weights (N, 21), evidence_3d (N, 21, 3) (only its bone directions count), box_side (N,)
        pixels, from_landmarks (N,) 1 where the targets are a detector's landmarks (see
        HandFitter.landmarks). The ``views_problem`` of one view with R = I, t = 0."""
        K = np.asarray(K, np.float64)
        n = len(K)
        return self.views_problem(K[:, None], np.broadcast_to(np.eye(3), (n, 1, 3, 3)), np.zeros((n, 1, 3)),
                                  np.asarray(targets, np.float64)[:, None], np.asarray(target_weights, np.float64)[:, None],
                                  evidence_3d, np.asarray(box_side, np.float64)[:, None], from_landmarks)

    def views_problem(self, K, R, t, targets, target_weights, evidence_3d, box_side, from_landmarks) -> dict:
        """The data of N hands seen by V views each, as float64 arrays: K (N, V, 3, 3) pixels; R (N, V, 3, 3),
        t (N, V, 3) metres: view v sees R_v p + t_v of a point p of the fit's frame; targets (N, V, 21, 2)
        pixels; target_weights (N, V, 21) >= 0 (0 where a view does not see the hand; a view's weight folded
        in), normalised over all views together; evidence_3d (N, 21, 3) in the fit's frame; box_side (N, V)
        pixels (> 0 also for unused views); from_landmarks (N,)."""
        weights = np.asarray(target_weights, np.float64)
        evidence = np.asarray(evidence_3d, np.float64)
        return {"K": np.asarray(K, np.float64), "R": np.asarray(R, np.float64), "t": np.asarray(t, np.float64),
                "targets": np.asarray(targets, np.float64),
                "share": weights / np.maximum(weights.sum((1, 2), keepdims=True), 1e-6),
                "evidence": unit(evidence[:, BONE_END] - evidence[:, BONE_START])[0],
                "box": np.asarray(box_side, np.float64), "from_landmarks": np.asarray(from_landmarks, np.float64)}

    def split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(N, P) parameters -> pose (N, 16, 3), betas (N, S), wrist (N, 3) metres."""
        depth = np.exp(x[:, -1:])
        return x[:, :48].reshape(-1, 16, 3), x[:, 48:-3], np.concatenate([x[:, -3:-1] * depth, depth], 1)

    @staticmethod
    def join(pose: np.ndarray, betas: np.ndarray, wrist: np.ndarray) -> np.ndarray:
        """The inverse of ``split``."""
        pose, betas, wrist = (np.asarray(a, np.float64) for a in (pose, betas, wrist))
        return np.concatenate([pose.reshape(len(pose), -1), betas, wrist[:, :2] / wrist[:, 2:], np.log(wrist[:, 2:])], 1)

    def evaluate(self, x: np.ndarray, p: dict, jacobian: bool = True) -> dict:
        """At parameters x (N, P): ``energy`` (N,), ``misfit`` (N,) the 2D term alone (weighted mean Huber
        distance in box sides, over all views), ``points`` (N, 21, 3) in the fit's frame, and with
        ``jacobian`` the residuals ``r`` (N, R) and ``J`` (N, R, P) (the Huber term as reweighted at x)."""
        w = self.weights
        N, P = x.shape
        pose, betas, wrist = self.split(x)
        local, d_pose, d_betas = self.kinematics.points(pose, betas, p["from_landmarks"], jacobian)
        points = local + wrist[:, None]
        seen = np.einsum("nvcd,nkd->nvkc", p["R"], points) + p["t"][:, :, None]         # (N, V, 21, 3) each view's
        uvw = np.einsum("nvcd,nvkd->nvkc", p["K"], seen)
        depth = np.maximum(uvw[..., 2:], 1e-3)
        diff = (uvw[..., :2] / depth - p["targets"]) / p["box"][..., None, None]        # (N, V, 21, 2) box sides
        e = np.linalg.norm(diff, axis=-1)
        huber = np.where(e < HUBER, 0.5 * e ** 2, HUBER * (e - 0.5 * HUBER))
        misfit = (huber * p["share"]).sum((1, 2))
        bones, lengths = unit(points[:, BONE_END] - points[:, BONE_START])            # (N, 20, 3)
        angles = np.einsum("jca,njc->nja", self.frames, pose[:, 1:])                   # (N, 15, 3)
        z = (angles - self.mean) / self.std
        over = np.maximum(angles - self.upper, 0.0) + np.maximum(self.lower - angles, 0.0)
        energy = (w["keypoints_2d"] * misfit / HUBER ** 2
                  + w["bones_3d"] * 100.0 * (1.0 - (bones * p["evidence"]).sum(-1)).mean(1)
                  + w["pose_prior"] * (0.5 * (z ** 2).sum((1, 2)) + self.limit_weight * (over ** 2).sum((1, 2)))
                  + w["shape_prior"] * (betas ** 2).sum(1))
        out = {"energy": energy, "misfit": misfit, "points": points}
        if not jacobian:
            return out
        # d points / d x: pose and shape from the kinematics, the wrist from its parametrisation
        d_wrist = np.zeros((N, 3, 3))
        d_wrist[:, 0, 0] = d_wrist[:, 1, 1] = wrist[:, 2]
        d_wrist[:, :, 2] = wrist
        d_points = np.concatenate([d_pose, d_betas, np.broadcast_to(d_wrist[:, None], (N, 21, 3, 3))], -1)   # (N, 21, 3, P)
        d_seen = np.einsum("nvcd,nkdp->nvkcp", p["R"], d_points)                         # (N, V, 21, 3, P)
        d_project = (p["K"][:, :, None, :2] - (uvw[..., :2] / depth)[..., None] * p["K"][:, :, None, 2:]) / depth[..., None]
        scale = np.sqrt(w["keypoints_2d"] * p["share"] * np.where(e < HUBER, 1.0, HUBER / np.maximum(e, 1e-12))) / HUBER
        r_2d = scale[..., None] * diff                                                 # (N, V, 21, 2)
        J_2d = (scale / p["box"][..., None])[..., None, None] * (d_project @ d_seen)   # (N, V, 21, 2, P)
        c = np.sqrt(w["bones_3d"] * 100.0 / 20.0)
        r_3d = c * (bones - p["evidence"])
        d_bones = d_points[:, BONE_END] - d_points[:, BONE_START]
        turn = (np.eye(3) - bones[..., :, None] * bones[..., None, :]) / lengths[..., None]
        J_3d = c * (turn @ d_bones)                                                    # (N, 20, 3, P)
        c_pose = np.sqrt(w["pose_prior"])
        r_prior = c_pose * np.concatenate([z, np.sqrt(2.0 * self.limit_weight) * over], 1)   # (N, 30, 3)
        side = np.sign(angles - self.upper) * (angles > self.upper) + np.sign(angles - self.lower) * (angles < self.lower)
        J_prior = np.zeros((N, 2, 15, 3, P))
        blocks = self.frames.transpose(0, 2, 1)                                        # (15, 3, 3): d angle / d pose_j
        for j in range(15):
            J_prior[:, 0, j, :, 3 * (j + 1):3 * (j + 2)] = c_pose * blocks[j] / self.std[j][:, None]
            J_prior[:, 1, j, :, 3 * (j + 1):3 * (j + 2)] = (c_pose * np.sqrt(2.0 * self.limit_weight)
                                                            * side[:, j, :, None] * blocks[j])
        c_shape = np.sqrt(2.0 * w["shape_prior"])
        J_shape = np.zeros((N, self.num_betas, P))
        J_shape[:, :, 48:48 + self.num_betas] = c_shape * np.eye(self.num_betas)
        out["r"] = np.concatenate([r_2d.reshape(N, -1), r_3d.reshape(N, -1), r_prior.reshape(N, -1), c_shape * betas], 1)
        out["J"] = np.concatenate([J_2d.reshape(N, -1, P), J_3d.reshape(N, -1, P), J_prior.reshape(N, -1, P), J_shape], 1)
        return out


def solve(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A x = b for stacked (..., P, P) systems, by torch (on torch's threads): numpy's OpenBLAS spins
    its own threads, which beside torch's and the detector's made a 61 x 61 solve take 10 ms, not 0.1."""
    return torch.linalg.solve(torch.from_numpy(np.ascontiguousarray(A)), torch.from_numpy(np.ascontiguousarray(b))).numpy()


def levenberg_marquardt(energy: FitEnergy, x: np.ndarray, problem: dict, steps: int, tolerance: float = 1e-3) -> tuple[np.ndarray, dict]:
    """Minimise ``energy`` from x (N, P) for each hand, batched; at most ``steps`` Jacobians, fewer once
    no hand's energy drops by more than ``tolerance`` (relative). Returns (x, evaluation at x without J)."""
    N, P = x.shape
    damping = np.full(N, START_DAMPING)
    now = energy.evaluate(x, problem, jacobian=steps > 0)
    tried = len(DAMPINGS)
    repeat = {k: np.concatenate([v] * tried) for k, v in problem.items()}
    for step in range(steps):
        J, r = now["J"], now["r"]
        H = J.transpose(0, 2, 1) @ J
        g = np.einsum("nrp,nr->np", J, r)
        diagonal = np.maximum(np.diagonal(H, axis1=1, axis2=2), 1e-9)
        lambdas = damping[None] * DAMPINGS[:, None]                                    # (3, N)
        A = H[None] + (lambdas[..., None] * diagonal[None])[..., None] * np.eye(P)
        dx = solve(A, -np.broadcast_to(g[None, ..., None], (tried, N, P, 1)))[..., 0]
        trial = (x[None] + dx).reshape(tried * N, P)
        after = energy.evaluate(trial, repeat, jacobian=False)
        best = np.argmin(after["energy"].reshape(tried, N), axis=0)
        pick = best * N + np.arange(N)                                                  # rows of the best trials
        better = after["energy"][pick] < now["energy"]
        drop = (now["energy"] - np.where(better, after["energy"][pick], now["energy"])) / np.maximum(now["energy"], 1e-12)
        x = np.where(better[:, None], trial[pick], x)
        damping = np.where(better, lambdas[best, np.arange(N)], damping * DAMPINGS[-1])
        if step == steps - 1 or not (drop > tolerance).any():      # done: the trials already evaluated x
            mask = {"energy": better, "misfit": better, "points": better[:, None, None]}
            return x, {k: np.where(mask[k], after[k][pick], now[k]) for k in mask}
        now = energy.evaluate(x, problem)
    return x, now
