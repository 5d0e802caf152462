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

from typing import Optional

import cv2
import numpy as np
import torch

from core.hand_model import HandLayer, PosePrior
from core.hand_model.landmark_points import LandmarkPoints
from core.hand_model.model import KEYPOINT_BONES
from core.hand_model.rotations import mirror_axis_angle

FIT_STEPS = 30
HUBER_PIXELS = 0.05     # of the hand box: the 2D term is quadratic below, linear above
WEIGHTS = {"keypoints_2d": 1.0, "bones_3d": 0.1, "pose_prior": 0.008, "shape_prior": 0.001}   # chosen on held-out synthetic renders
BONE_START, BONE_END = (list(index) for index in zip(*KEYPOINT_BONES))


def bone_directions(keypoints: torch.Tensor) -> torch.Tensor:
    """(N, 21, 3) keypoints -> (N, 20, 3) unit directions of the 20 bones (KEYPOINT_BONES)."""
    bones = keypoints[:, BONE_END] - keypoints[:, BONE_START]
    return bones / bones.norm(dim=-1, keepdim=True).clamp(min=1e-9)


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


class HandFitter(torch.nn.Module):
    """Fit pose, shape and wrist position of right hands to 2D keypoints, batched (Adam).

    The evidence is a detector's landmarks, which are not defined where the model's keypoints are
    (core.hand_model.landmark_points), so the data terms compare it with the model's *landmark
    points*. The 2D term pulls the projected landmark points onto the targets (Huber, in units of
    the hand's box side); the 3D term turns the 20 bones between them toward 3D evidence (the
    landmark network's world landmarks, or the network's joints), by direction only, since that
    evidence's scale is not the model's: it says what 2D cannot, which way each bone points in
    depth; the pose prior and a shape prior keep the hand plausible.
    """

    def __init__(self, layer: HandLayer, prior: PosePrior, steps: int = FIT_STEPS, weights: dict = None):
        super().__init__()
        self.layer, self.prior, self.steps = layer, prior, steps
        self.weights = {**WEIGHTS, **(weights or {})}
        self.landmark_points = LandmarkPoints("right")

    def landmarks(self, pose: Optional[torch.Tensor], betas: torch.Tensor, wrist: torch.Tensor,
                  from_landmarks: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(N, 21, 3) camera-space landmark points of the hand (pose (N, 16, 3), None: the rest pose)
        whose wrist keypoint is at ``wrist`` (N, 3). ``from_landmarks`` (N,) is 1 where the evidence is a
        detector's landmarks and 0 where it is the model's own keypoints (a network's joints or
        heatmaps): those hands get the model keypoints themselves."""
        out = self.layer(betas, pose, keypoints_only=True)
        points = self.landmark_points(out, from_landmarks)
        return points - out.keypoints[:, :1] + wrist[:, None]

    def translation(self, betas: torch.Tensor, wrist: torch.Tensor) -> torch.Tensor:
        """The layer's ``transl`` (N, 3) that puts the wrist at ``wrist``: the root joint pivots on its
        rest position, so the wrist keypoint is rest_joints[0] + transl whatever the pose."""
        return wrist - self.layer(betas).rest_joints[:, 0]

    def energy(self, pose: torch.Tensor, betas: torch.Tensor, wrist: torch.Tensor, K: torch.Tensor,
               targets: torch.Tensor, target_weights: torch.Tensor, evidence_3d: torch.Tensor,
               box_side: torch.Tensor, from_landmarks: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(N,) what the fit minimises, per hand (arguments as ``forward``'s): how badly the hand
        explains the 2D keypoints and the 3D bone directions, plus how unnatural its pose and shape are."""
        points = self.landmarks(pose, betas, wrist, from_landmarks)
        loss_2d = self._huber_2d(points, K, targets, target_weights, box_side)
        loss_3d = (1.0 - (bone_directions(points) * bone_directions(evidence_3d)).sum(-1)).mean(1)   # 1 - cos
        w = self.weights
        return (w["keypoints_2d"] * loss_2d / HUBER_PIXELS ** 2 + w["bones_3d"] * 100.0 * loss_3d
                + w["pose_prior"] * self.prior.score(pose) + w["shape_prior"] * (betas ** 2).sum(1))

    @staticmethod
    def _huber_2d(points, K, targets, target_weights, box_side) -> torch.Tensor:
        """(N,) weighted mean Huber distance of projected (N, 21, 3) points to the (N, 21, 2) targets,
        in units of the hand's box side."""
        error = (project_points(points, K) - targets).norm(dim=-1) / box_side[:, None]
        huber = torch.where(error < HUBER_PIXELS, 0.5 * error ** 2, HUBER_PIXELS * (error - 0.5 * HUBER_PIXELS))
        return (huber * target_weights).sum(1) / target_weights.sum(1).clamp(min=1e-6)

    def misfit_2d(self, pose, betas, wrist, K, targets, target_weights, box_side, from_landmarks=None) -> torch.Tensor:
        """(N,) how far the hand's landmark points project from the 2D keypoints (the energy's 2D term
        alone, arguments as ``forward``'s): what tells two fits of one hand apart."""
        return self._huber_2d(self.landmarks(pose, betas, wrist, from_landmarks), K, targets, target_weights, box_side)

    def forward(self, pose: torch.Tensor, betas: torch.Tensor, wrist: torch.Tensor, K: torch.Tensor,
                targets: torch.Tensor, target_weights: torch.Tensor, evidence_3d: torch.Tensor,
                box_side: torch.Tensor, from_landmarks: Optional[torch.Tensor] = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """pose (N, 16, 3), betas (N, B), wrist (N, 3): start values; K (N, 3, 3); targets (N, 21, 2)
        pixels with target_weights (N, 21) in [0, 1]; evidence_3d (N, 21, 3) 3D keypoints in the
        camera's axes (any origin and scale: only their bone directions count); box_side (N,) pixels;
        from_landmarks (N,): see ``landmarks`` (None: all detector landmarks). Returns the fitted (pose, betas, wrist)."""
        if self.steps <= 0:
            return pose, betas, wrist
        # the wrist as (x/z, y/z, log z): steps of one size move it evenly in the image and in depth
        ray = (wrist[:, :2] / wrist[:, 2:]).clone().requires_grad_()
        log_depth = wrist[:, 2].log().clone().requires_grad_()
        pose = pose.clone().requires_grad_()
        betas = betas.clone().requires_grad_()
        optimizer = torch.optim.Adam([{"params": [pose], "lr": 0.03}, {"params": [betas], "lr": 0.05},
                                      {"params": [ray, log_depth], "lr": 0.01}])
        with torch.enable_grad():
            for _ in range(self.steps):
                depth = log_depth.exp()
                wrist_now = torch.cat([ray * depth[:, None], depth[:, None]], dim=1)
                loss = self.energy(pose, betas, wrist_now, K, targets, target_weights, evidence_3d, box_side,
                                   from_landmarks).sum()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        depth = log_depth.exp()
        wrist = torch.cat([ray * depth[:, None], depth[:, None]], dim=1)
        return pose.detach(), betas.detach(), wrist.detach()


def mirror_to_left(pose: np.ndarray, transl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A right hand's (…, 16, 3) pose and (…, 3) layer translation in the mirrored frame -> the left
    hand's in the real frame (the left model is the right one with x negated)."""
    pose = mirror_axis_angle(torch.as_tensor(pose)).numpy()
    transl = np.array(transl, copy=True)
    transl[..., 0] *= -1
    return pose, transl
