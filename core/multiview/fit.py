"""One hand model fitted to every calibrated view that sees the hand (batched over hands).

Each group of matched ViewHands (core.multiview.matching) is fitted in the frame of its *anchor*,
the view of most weight among those that called the side being fitted (else among all): the fit's
wrist is parametrised along the anchor's rays (core.engine.least_squares), which needs the hand in
front of that camera, and the first view need not see the hand. A left hand is fitted, as in the
single-view engine, as a right hand in the mirrored world: the whole rig is mirrored (M = diag(-1, 1,
1); view v's camera becomes M R M, M t, its intrinsics and landmarks mirrored across its image width).

Side: every group is fitted as a right and as a left hand in one batch, and the fit that explains
the views better is kept (``choose_side``): three-dimensional landmarks have a handedness that one
picture does not show. Start: the anchor's single-view estimate, moved so that its landmark points
sit on the landmarks triangulated from all views (the median offset: the single-view depth is the
part a single camera gets wrong), or, where no view called the side, the model posed onto the
triangulated landmarks. 3D bone evidence: the views' world landmarks (or their estimates' points) turned into
the anchor's frame, wrist-relative, averaged with the view weights (world landmarks first turned by
PnP onto their view's 2D landmarks, as the single-view engine does). 2D targets: every view's
landmarks, each view's share scaled by its weight.

View weight = detection score x min(1, max(MIN_SIZE_WEIGHT, box side / FULL_SIZE_PX)): the 2D term
already measures each view's error in its own hand-box sides, so a distant view would count like a
near one; but the landmark network sees a hand under ~100 pixels blurred (its input is 224 pixels
for a crop 1.5 x the hand), so small views and unsure detections count less.

The result is moved into the first view's frame (x_0 = R_a^T (x_a - t_a)). A hand only one view
sees keeps that view's single-view estimate, moved the same way. Units: metres, pixels, radians.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from core.engine.fitting import HandFitter, align_to_keypoints, mirror_intrinsics, mirror_to_left
from core.engine.pipeline import HandEstimate
from core.hand_model.inverse_kinematics import pose_from_keypoints

from .matching import ViewHand, right_probability, triangulate

FULL_SIZE_PX = 96.0          # a hand box this large (pixels, longer side) or larger gets full weight
MIN_SIZE_WEIGHT = 0.25       # ... a smaller one less, down to this
MIRROR = np.diag([-1.0, 1.0, 1.0])
SIDES = ("right", "left")
SIDE_CALL_WEIGHT = 0.1       # the detectors' summed log-odds, as a share of an energy unit (``choose_side``)


def view_weight(hand: ViewHand) -> float:
    """A view's weight in the fit (see the module docstring)."""
    return float(hand.score) * float(np.clip(hand.box_side / FULL_SIZE_PX, MIN_SIZE_WEIGHT, 1.0))


def choose_side(energy: np.ndarray, group: list[ViewHand]) -> tuple[int, float]:
    """energy (2,) of a group's fits as SIDES[0] and SIDES[1] -> (index of the side kept, its probability).

    The fits' energies decide: seen by several calibrated views, the landmarks' 3D shape is a right or
    a left hand (a mirror image cannot be turned into the original), which the detector's side call in
    each picture, made from appearance, often is not (on held-out renders it was wrong in about one
    view in six, often with confidence over 0.9). The calls add their log-odds (``right_probability``) as
    a weak prior, SIDE_CALL_WEIGHT of them, for hands whose shape does not tell (flat ones)."""
    right = float(np.clip(right_probability(group), 1e-6, 1 - 1e-6))
    prior = SIDE_CALL_WEIGHT * np.log(right / (1.0 - right))                 # log-odds for SIDES[0] = right
    margin = float(np.clip(energy[1] - energy[0] + prior, -50.0, 50.0))      # > 0: right explains more
    p_right = 1.0 / (1.0 + np.exp(-margin))
    return (0, p_right) if margin >= 0 else (1, 1.0 - p_right)


def move_hand(pose: np.ndarray, transl: np.ndarray, points: np.ndarray, rest_wrist: np.ndarray,
              A: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A posed hand under the rigid motion x -> A x + b: pose (16, 3) (the root turns), the layer's
    transl (3,), points (21, 3), with rest_wrist (3,) the rest root joint of that side and shape (the
    root pivots on it, so transl + rest_wrist is the posed wrist)."""
    pose = np.array(pose, np.float64)
    pose[0] = (Rotation.from_matrix(A) * Rotation.from_rotvec(pose[0])).as_rotvec()
    transl = A @ (np.asarray(transl, np.float64) + rest_wrist) + b - rest_wrist
    return pose, transl, np.asarray(points, np.float64) @ A.T + b


class MultiViewFitter:
    """``fit(groups, cameras, widths)`` -> one HandEstimate per group, in the first view's frame.

    ``fitter``: the engine's HandFitter (its energy, weights and prior); ``steps``: Levenberg-Marquardt
    steps (default twice the fitter's: the start, moved from one view's estimate, is farther from the
    minimum than a single view's start is; 0 with --no-refine)."""

    def __init__(self, fitter: HandFitter, steps: Optional[int] = None):
        self.fitter = fitter
        self.steps = 2 * fitter.steps if steps is None else steps

    def rest_wrist(self, side: str, betas: np.ndarray) -> np.ndarray:
        """(3,) the rest root joint of a hand of that side and (B,) shape."""
        wrist = self.fitter.kinematics.rest_wrist(np.asarray(betas, np.float64)[None])[0]
        return wrist * np.diag(MIRROR) if side == "left" else wrist

    def fit(self, groups: list[list[ViewHand]], cameras, widths: list[int]) -> list[HandEstimate]:
        """groups: matched hands (each ViewHand with its single-view ``estimate``); cameras: the V
        ViewCameras (view 0 the reference); widths: each view's image width in pixels (for mirroring)."""
        results: list[Optional[HandEstimate]] = [None] * len(groups)
        several = [g for g, group in enumerate(groups) if len(group) > 1]
        for g, group in enumerate(groups):
            if len(group) == 1:
                results[g] = self._single(group[0], cameras)
        if several:
            for g, estimate in zip(several, self._fit_many([groups[g] for g in several], cameras, widths)):
                results[g] = estimate
        return results

    def _single(self, hand: ViewHand, cameras) -> HandEstimate:
        """A hand one view sees: its single-view estimate, moved into the first view's frame."""
        e, camera = hand.estimate, cameras[hand.view]
        return self._estimate(e.side, e.side_confidence, e.pose, e.betas, e.transl, e.joints_3d, camera.R, camera.t,
                              [hand], cameras)

    def _fit_many(self, groups: list[list[ViewHand]], cameras, widths) -> list[HandEstimate]:
        """The groups of two views or more, fitted in one batch, each as both sides: the side whose fit
        explains the views better (lower energy) is kept (see ``choose_side``)."""
        V = max(len(g) for g in groups)
        rows = [self._problem_row(group, cameras, widths, V, side) for group in groups for side in SIDES]
        stack = {k: np.stack([row[k] for row in rows]) for k in rows[0] if k not in ("side", "anchor")}
        problem = self.fitter.energy.views_problem(stack["K"], stack["R"], stack["t"], stack["targets"],
                                                   stack["weights"], stack["evidence"], stack["box"],
                                                   stack["from_landmarks"])
        fit = self.fitter.fit_problem(stack["pose"], stack["betas"], stack["wrist"], problem, self.steps)
        out = []
        for g, group in enumerate(groups):
            n, confidence = choose_side(fit.energy[2 * g: 2 * g + 2], group)
            n += 2 * g
            row = rows[n]
            pose, transl, points = fit.pose[n], fit.transl[n], fit.points[n]
            if row["side"] == "left":
                pose, transl = mirror_to_left(pose, transl)
                points = points @ MIRROR
            anchor = cameras[row["anchor"].view]
            out.append(self._estimate(row["side"], confidence, pose, fit.betas[n], transl, points,
                                      anchor.R, anchor.t, group, cameras))
        return out

    def _problem_row(self, group: list[ViewHand], cameras, widths, V: int, side: str) -> dict:
        """One group's problem arrays as a hand of ``side``, padded to V views (weight 0), and its start,
        in the (mirrored for a left hand) anchor frame: the best view calling that side, else the best view."""
        agreeing = [h for h in group if h.side == side] or group
        anchor = max(agreeing, key=view_weight)
        left = side == "left"
        R_a, t_a = cameras[anchor.view].R, np.asarray(cameras[anchor.view].t, np.float64)
        K = np.tile(np.asarray(cameras[anchor.view].K, np.float64), (V, 1, 1))     # unused views: finite values
        R, t = np.tile(np.eye(3), (V, 1, 1)), np.zeros((V, 3))
        targets, weights, box = np.zeros((V, 21, 2)), np.zeros((V, 21)), np.ones(V)
        evidence, evidence_weight = np.zeros((21, 3)), 0.0
        for i, h in enumerate(group):
            camera = cameras[h.view]
            Q = camera.R @ R_a.T                          # anchor frame -> view h's camera
            s = np.asarray(camera.t, np.float64) - Q @ t_a
            points = np.asarray(h.keypoints_2d, np.float64)
            K[i] = camera.K
            if left:
                Q, s = MIRROR @ Q @ MIRROR, MIRROR @ s
                K[i] = mirror_intrinsics(camera.K, widths[h.view])
                points = np.stack([widths[h.view] - 1 - points[:, 0], points[:, 1]], 1)
            R[i], t[i], targets[i], box[i] = Q, s, points, max(h.box_side, 1.0)
            weights[i] = np.asarray(h.weights, np.float64) * view_weight(h)
            world = self._evidence(h, camera.K)
            if world is not None:                          # in the (mirrored) anchor's axes
                world = (world @ (MIRROR if left else np.eye(3))) @ Q
                evidence += view_weight(h) * world
                evidence_weight += view_weight(h)
        e = anchor.estimate
        betas = np.asarray(e.betas, np.float64)
        seen = weights.sum(1) > 0
        P = np.stack([k @ np.concatenate([r, tt[:, None]], 1) for k, r, tt in zip(K[seen], R[seen], t[seen])])
        landmarks = triangulate(P, targets[seen], weights[seen] > 0)        # (21, 3) the (mirrored) anchor frame
        if e.side == side:
            pose, transl = np.asarray(e.pose, np.float64), np.asarray(e.transl, np.float64)
            if left:                                      # the left hand as a right one in the mirrored world
                pose, transl = mirror_to_left(pose, transl)
            wrist = transl + self.fitter.kinematics.rest_wrist(betas[None])[0]
            joints = np.asarray(e.joints_3d, np.float64) @ (MIRROR if left else np.eye(3))
            shift = np.median(landmarks - joints, axis=0)  # the start moved onto the triangulated landmarks
            if np.all(np.isfinite(shift)) and wrist[2] + shift[2] > 0.05:
                wrist = wrist + shift
        else:                                             # no view's estimate of this side: posed onto the landmarks
            pose, wrist = self._pose_onto(landmarks, betas)
        if evidence_weight <= 0:
            evidence = joints
        return {"K": K, "R": R, "t": t, "targets": targets, "weights": weights, "box": box,
                "evidence": evidence / max(evidence_weight, 1e-9) if evidence_weight > 0 else evidence,
                "from_landmarks": float(all(h.from_landmarks for h in group)),
                "pose": pose, "betas": betas, "wrist": wrist, "side": side, "anchor": anchor}

    def _pose_onto(self, landmarks: np.ndarray, betas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A right hand of shape ``betas`` (B,) whose landmark points lie on ``landmarks`` (21, 3) metres:
        (pose (16, 3), wrist keypoint (3,)); a far-off or degenerate triangulation gives the rest pose there."""
        kinematics, ones = self.fitter.kinematics, np.ones(1)
        rest = kinematics.points(np.zeros((1, 16, 3)), betas[None], ones, derivatives=False)[0]
        target = landmarks - landmarks[:1]
        pose = np.zeros((16, 3))
        if np.all(np.isfinite(target)) and np.ptp(target, axis=0).max() > 1e-3:
            with torch.no_grad():
                pose = pose_from_keypoints(torch.as_tensor(rest), torch.as_tensor(target[None])).numpy()[0]
        posed = kinematics.points(pose[None], betas[None], ones, derivatives=False)[0][0]
        wrist = landmarks[0] - posed[0]
        if not np.all(np.isfinite(wrist)) or wrist[2] <= 0.05:
            wrist = np.array([0.0, 0.0, 0.5])
        return np.asarray(pose, np.float64), wrist

    @staticmethod
    def _evidence(hand: ViewHand, K: np.ndarray) -> Optional[np.ndarray]:
        """(21, 3) wrist-relative 3D evidence of one view in its camera's axes: the world landmarks, turned
        by PnP onto that view's 2D landmarks as the single-view engine turns them (their own orientation
        is a crop's, not the camera's), else the single-view estimate's points; None without either."""
        if hand.world is not None:
            world = np.asarray(hand.world, np.float64)
            world = world - world[:1]
            aligned = align_to_keypoints(world, hand.keypoints_2d, hand.weights, K)
            return world if aligned is None else world @ aligned[0].T
        if hand.estimate is not None:
            points = np.asarray(hand.estimate.joints_3d, np.float64)
            return points - points[:1]
        return None

    def _estimate(self, side, confidence, pose, betas, transl, points, R, t, group, cameras) -> HandEstimate:
        """A hand (pose, transl, points) in the frame of a view with pose R, t -> the HandEstimate in the
        first view's frame; keypoints_2d: its projection into the first view."""
        R, t = np.asarray(R, np.float64), np.asarray(t, np.float64)
        pose, transl, points = move_hand(pose, transl, points, self.rest_wrist(side, betas), R.T, -R.T @ t)
        uvw = points @ np.asarray(cameras[0].K, np.float64).T
        keypoints = uvw[:, :2] / np.maximum(uvw[:, 2:], 1e-3)
        first = next((h for h in group if h.view == 0), None)
        box = (np.asarray(first.estimate.box, np.float64) if first is not None and first.estimate is not None
               else np.concatenate([keypoints.min(0), keypoints.max(0)]))
        estimate = next((h.estimate for h in group if h.estimate is not None), None)
        return HandEstimate(side=side, score=float(max(h.score for h in group)), box=box,
                            pose=pose.astype(np.float32), betas=np.asarray(betas, np.float32),
                            transl=transl.astype(np.float32), joints_3d=points.astype(np.float32),
                            keypoints_2d=keypoints.astype(np.float32),
                            source=estimate.source if estimate is not None else "mediapipe",
                            side_confidence=float(confidence),
                            person=first.estimate.person if first is not None and first.estimate is not None else -1)
