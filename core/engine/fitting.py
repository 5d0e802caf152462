"""From a network's crop-space output to a hand in the full image's camera, and a short refinement.

Everything here works in the "right-hand frame": a left hand is handled as the mirror image of a
right hand (image x -> W - 1 - x, camera X -> -X, principal point mirrored too), and mirrored back
at the end (``mirror_to_left``). Units: metres, pixels, radians.

Weak perspective -> translation. The crop of side L pixels centred on c maps normalised crop
coordinates u to source pixels p = c + u L / 2, and the network's camera says u = s X + t for
root-relative X. A pinhole camera with focal f sees p = f X / Z + principal, so near the hand
f / Z = s L / 2, i.e. Z = 2 f / (s L), and the wrist (X = 0) at p = c + t L / 2 sits at
((p - principal) Z / f, Z).
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import cv2
import numpy as np
import torch

from core.hand_model import HandLayer, PosePrior
from core.hand_model.keypoint_jacobian import KeypointJacobian
from core.hand_model.landmark_points import LandmarkPoints
from core.hand_model.rotations import mirror_axis_angle

from .least_squares import FitEnergy, levenberg_marquardt

FIT_STEPS = 4           # Levenberg-Marquardt steps (core.engine.least_squares); fewer once none helps
# Chosen on held-out synthetic renders (Adam, 30 steps); for the converged least-squares fit the shape prior
# 0.001 -> 0.1 and the pose prior 0.008 -> 0.016 (267 renders, seed 5: PA / root-relative / camera-space mm
# 16.78 / 38.18 / 113.7 -> 16.39 / 38.75 / 111.6, the Adam fit 16.50 / 38.17 / 108.8; video dev clips, seed 2:
# PA 6.7 -> 6.5, acceleration error 1.19 -> 1.16, the Adam fit 6.5, 1.24): fitted to the end, shape and pose
# drifted to explain the landmarks' noise.
WEIGHTS = {"keypoints_2d": 1.0, "bones_3d": 0.1, "pose_prior": 0.016, "shape_prior": 0.1}


def mirror_intrinsics(K: np.ndarray, width: int) -> np.ndarray:
    """(3, 3) K of the horizontally mirrored image (pixel centres at integers)."""
    mirrored = np.array(K, np.float64)
    mirrored[0, 2] = width - 1 - mirrored[0, 2]
    return mirrored


def wrist_position(camera: np.ndarray, centre: np.ndarray, side: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(N, 3) weak-perspective cameras, (N, 2) crop centres, (N,) crop sides (pixels), K (3, 3)
    -> (N, 3) wrist positions in camera space, metres (see the module docstring)."""
    focal = 0.5 * (K[0, 0] + K[1, 1])
    scale = np.maximum(camera[:, 0], 1e-3)
    depth = 2.0 * focal / (scale * side)
    pixel = centre + camera[:, 1:] * side[:, None] / 2.0
    xy = (pixel - K[:2, 2]) * depth[:, None] / np.array([K[0, 0], K[1, 1]])
    return np.concatenate([xy, depth[:, None]], axis=1)


def align_to_keypoints(joints_rel: np.ndarray, targets: np.ndarray, weights: np.ndarray,
                       K: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Rigid motion that puts root-relative joints (21, 3) metres onto 2D targets (21, 2) pixels
    through K (3, 3) (OpenCV's PnP on the keypoints with weight > 0.3): (R (3, 3), wrist (3,)),
    or None when too few keypoints are trusted or the solution lies behind the camera."""
    use = weights > 0.3
    if use.sum() < 6:
        return None
    obj = np.ascontiguousarray(joints_rel[use], np.float64)
    img = np.ascontiguousarray(targets[use], np.float64)
    ok, rvec, tvec = cv2.solvePnP(obj, img, np.asarray(K, np.float64), None, flags=cv2.SOLVEPNP_EPNP)
    if ok:
        ok, rvec, tvec = cv2.solvePnP(obj, img, np.asarray(K, np.float64), None, rvec, tvec, True,
                                      flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok or tvec[2, 0] <= 0.05:
        return None
    return cv2.Rodrigues(rvec)[0], tvec[:, 0]


def project_points(points: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """(N, P, 3) camera-space metres -> (N, P, 2) pixels through K (3, 3) or (N, 3, 3) (depth clamped at 1 mm)."""
    uvw = points @ K.transpose(-1, -2)
    return uvw[..., :2] / uvw[..., 2:].clamp(min=1e-3)


@dataclasses.dataclass
class Fit:
    """Fitted right hands, one row per hand (numpy, float64; metres, pixels, radians)."""

    pose: np.ndarray        # (N, 16, 3) axis-angle
    betas: np.ndarray       # (N, S)
    wrist: np.ndarray       # (N, 3) the wrist keypoint in camera space
    transl: np.ndarray      # (N, 3) the hand layer's translation that puts the wrist there
    points: np.ndarray      # (N, 21, 3) camera-space landmark points (core.hand_model.landmark_points)
    energy: np.ndarray      # (N,) what the fit minimised (core.engine.least_squares)
    misfit: np.ndarray      # (N,) its 2D term alone: weighted mean Huber distance to the targets, in box sides

    def take(self, index) -> "Fit":
        return Fit(**{f.name: getattr(self, f.name)[index] for f in dataclasses.fields(self)})


class HandFitter(torch.nn.Module):
    """Fit pose, shape and wrist position of right hands to 2D keypoints, batched (Levenberg-Marquardt).

    The evidence is a detector's landmarks, which are not defined where the model's keypoints are
    (core.hand_model.landmark_points), so the data terms compare it with the model's *landmark
    points*. The 2D term pulls the projected landmark points onto the targets (Huber, in units of
    the hand's box side); the 3D term turns the 20 bones between them toward 3D evidence (the
    landmark network's world landmarks, or the network's joints), by direction only, since that
    evidence's scale is not the model's: it says what 2D cannot, which way each bone points in
    depth; the pose prior and a shape prior keep the hand plausible (core.engine.least_squares).
    The fit itself runs in numpy on the CPU; ``landmarks`` is the same points in torch (any device).
    """

    def __init__(self, layer: HandLayer, prior: PosePrior, steps: int = FIT_STEPS, weights: dict = None):
        super().__init__()
        self.layer, self.prior, self.steps = layer, prior, steps
        self.weights = {**WEIGHTS, **(weights or {})}
        self.landmark_points = LandmarkPoints("right")
        self.kinematics = KeypointJacobian(layer, self.landmark_points)
        self.energy = FitEnergy(self.kinematics, prior, self.weights)

    def landmarks(self, pose: Optional[torch.Tensor], betas: torch.Tensor, wrist: torch.Tensor,
                  from_landmarks: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(N, 21, 3) camera-space landmark points of the hand (pose (N, 16, 3), None: the rest pose)
        whose wrist keypoint is at ``wrist`` (N, 3). ``from_landmarks`` (N,) is 1 where the evidence is a
        detector's landmarks and 0 where it is the model's own keypoints (a network's joints or
        heatmaps): those hands get the model keypoints themselves."""
        out = self.layer(betas, pose, keypoints_only=True)
        points = self.landmark_points(out, from_landmarks)
        return points - out.keypoints[:, :1] + wrist[:, None]

    def fit(self, pose: np.ndarray, betas: np.ndarray, wrist: np.ndarray, K: np.ndarray, targets: np.ndarray,
            target_weights: np.ndarray, evidence_3d: np.ndarray, box_side: np.ndarray,
            from_landmarks: Optional[np.ndarray] = None, steps: Optional[int] = None) -> Fit:
        """pose (N, 16, 3), betas (N, B), wrist (N, 3): start values; K (N, 3, 3); targets (N, 21, 2)
        pixels with target_weights (N, 21) in [0, 1]; evidence_3d (N, 21, 3) 3D keypoints in the
        camera's axes (any origin and scale: only their bone directions count); box_side (N,) pixels;
        from_landmarks (N,): see ``landmarks`` (None: all detector landmarks); steps: at most this many
        (default: the fitter's; 0 evaluates the start). Returns the fitted hands."""
        from_landmarks = np.ones(len(pose)) if from_landmarks is None else from_landmarks
        problem = self.energy.problem(K, targets, target_weights, evidence_3d, box_side, from_landmarks)
        return self.fit_problem(pose, betas, wrist, problem, steps)

    def fit_problem(self, pose: np.ndarray, betas: np.ndarray, wrist: np.ndarray, problem: dict,
                    steps: Optional[int] = None) -> Fit:
        """``fit`` on a problem made by ``self.energy.problem`` or ``.views_problem`` (several calibrated
        views of each hand: core.multiview.fit); wrist, points and transl in the problem's frame."""
        x, now = levenberg_marquardt(self.energy, self.energy.join(pose, betas, wrist), problem,
                                     self.steps if steps is None else steps)
        pose, betas, wrist = self.energy.split(x)
        return Fit(pose=pose, betas=betas, wrist=wrist, transl=wrist - self.kinematics.rest_wrist(betas),
                   points=now["points"], energy=now["energy"], misfit=now["misfit"])


def mirror_to_left(pose: np.ndarray, transl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A right hand's (…, 16, 3) pose and (…, 3) layer translation in the mirrored frame -> the left
    hand's in the real frame (the left model is the right one with x negated)."""
    pose = mirror_axis_angle(torch.as_tensor(pose)).numpy()
    transl = np.array(transl, copy=True)
    transl[..., 0] *= -1
    return pose, transl
