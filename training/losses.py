"""Training losses: ``HamrLoss`` (HAMR, Zhang et al. ICCV 2019) and ``BaselineLoss`` (the FreiHAND
report's direct joint regressor).

Both take the network's prediction dict and a collated batch of crop samples (``training/sample.py``)
and return ``(total, terms)``: the weighted sum (a scalar tensor) and a dict of the unweighted terms
(detached scalars, for logging) plus "total".

HAMR prediction dict (B = batch, V = hand vertices):
  heatmaps      list of (B, 21, h, w) per stage of the heatmap cascade
  joints_3d     (B, 21, 3) root-relative, metres      keypoints_2d (B, 21, 2) crop coords in [-1, 1]
  rotmats       (B, 16, 3, 3) relative joint rotations  betas (B, 10)
  camera        (B, 3) weak perspective (s, tx, ty): keypoints_2d ~= s * joints_3d[:, :, :2] + t
  vertices      (B, V, 3) root-relative, metres
  iterations    list of per-iteration dicts of the regressor, each with at least joints_3d,
                keypoints_2d and camera (the top-level values are the last iteration's)

Terms (weights dict keys; a weight of 0 switches a term off and it is not computed):
  joints_3d     L3D: mean |error| per coordinate of root-relative joints, millimetres; has_3d samples
  keypoints_2d  L2D: mean |error| per coordinate of the keypoints, normalised crop units
                (1 pixel of a 128 crop = 0.0156)
  heatmaps      L2D: MSE against Gaussians (peak 1, ``heatmap_sigma`` pixels of the heatmap) rendered
                at the GT keypoints, averaged over the stages
  pose_prior    Lgeo: ``PosePrior.score`` of the predicted rotations (finger joints only), batch mean
  pose_limits   Lgeo: ``PosePrior.limit_loss`` only (squared violation of the joint limits, rad^2)
  shape_prior   Lgeo: |betas|^2, batch mean
  pose_params   HMR's parameter loss where the true pose is known (has_mesh right-hand crops, i.e.
                synthetic data): mean squared error of the 16 joint rotation matrices
  shape_params  the same for the betas (mean squared error)
  camera        Lcam: mean |(s, tx, ty) - camera_from_2d3d(GT)|; has_3d samples
  silhouette    Lseg: mean |soft silhouette of the predicted mesh (projected with the predicted
                camera) - GT mask area-downsampled to ``silhouette_size``|; has_mask samples
With ``every_iteration`` (default, as HMR/HAMR supervise every step of the iterative regressor) the
joints_3d, keypoints_2d, camera, pose_params and shape_params terms are averaged over
``iterations``; otherwise (or when the prediction has no iterations) they use the final values.
Lgeo and Lseg use the final values.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from core.hand_model.prior import PosePrior
from core.hand_model.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from core.networks.heatmaps import render_heatmaps

from .sample import ROOT
from .silhouette import normalized_to_pixels, soft_silhouette

DEFAULT_WEIGHTS = {
    "joints_3d": 1.0,
    "keypoints_2d": 100.0,
    "heatmaps": 1000.0,
    "pose_prior": 0.01,
    "pose_limits": 0.0,
    "shape_prior": 0.01,
    "camera": 1.0,
    "silhouette": 10.0,
    "pose_params": 100.0,
    "shape_params": 1.0,
}
MM_PER_M = 1000.0


def masked_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` (B, ...) over the samples where ``valid`` (B,) is True; 0 (still in the
    graph) when none is."""
    weight = valid.to(values.dtype).view(-1, *([1] * (values.dim() - 1)))
    count = valid.sum() * (values[0].numel() if values.dim() > 1 else 1)
    return (values * weight).sum() / count.clamp(min=1)


def root_relative(joints: torch.Tensor) -> torch.Tensor:
    """(B, 21, 3) -> the same with the wrist (keypoint 0) at the origin."""
    return joints - joints[:, ROOT:ROOT + 1]


def camera_from_2d3d(keypoints_2d: torch.Tensor, joints_3d: torch.Tensor) -> torch.Tensor:
    """Least-squares weak-perspective camera: (B, N, 2) 2D, (B, N, 3) 3D -> (B, 3) (s, tx, ty)
    minimising sum_j |s * joints_3d[j, :2] + t - keypoints_2d[j]|^2 (exact when the data fit one)."""
    xy = joints_3d[..., :2]
    xy_mean, uv_mean = xy.mean(1, keepdim=True), keypoints_2d.mean(1, keepdim=True)
    xy_c, uv_c = xy - xy_mean, keypoints_2d - uv_mean
    scale = (xy_c * uv_c).sum((1, 2)) / (xy_c * xy_c).sum((1, 2)).clamp(min=1e-12)   # (B,)
    shift = uv_mean[:, 0] - scale[:, None] * xy_mean[:, 0]                          # (B, 2)
    return torch.cat([scale[:, None], shift], dim=1)


def joints_3d_l1_mm(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean |error| per coordinate of root-relative (B, 21, 3) joints in millimetres over valid (B,) samples."""
    error = (root_relative(pred.float()) - root_relative(target.float())).abs() * MM_PER_M
    return masked_mean(error, valid)


class HamrLoss(nn.Module):
    """HAMR's loss (see the module docstring): ``loss(pred, batch) -> (total, terms)``.

    weights: term name -> weight (missing names take 0; see DEFAULT_WEIGHTS for a starting point).
    hand_prior: the right hand's ``PosePrior`` (moves with ``.to(device)``).
    faces: (F, 3) the hand mesh's triangles, needed when "silhouette" is on.
    """

    def __init__(self, weights: dict, hand_prior: PosePrior, faces: Optional[torch.Tensor] = None,
                 heatmap_sigma: float = 1.5, silhouette_size: int = 64, silhouette_sigma: float = 0.5,
                 every_iteration: bool = True):
        super().__init__()
        unknown = set(weights) - set(DEFAULT_WEIGHTS)
        if unknown:
            raise ValueError(f"unknown loss terms {sorted(unknown)}; known: {sorted(DEFAULT_WEIGHTS)}")
        self.weights = {name: float(w) for name, w in weights.items() if float(w) != 0.0}
        if "silhouette" in self.weights and faces is None:
            raise ValueError("the silhouette term needs the hand mesh's faces")
        self.prior = hand_prior
        if faces is not None:
            self.register_buffer("faces", torch.as_tensor(faces, dtype=torch.long), persistent=False)
        self.heatmap_sigma, self.every_iteration = heatmap_sigma, every_iteration
        self.silhouette_size, self.silhouette_sigma = silhouette_size, silhouette_sigma

    def forward(self, pred: dict, batch: dict) -> tuple[torch.Tensor, dict]:
        steps = pred.get("iterations") if self.every_iteration else None
        steps = steps or [pred]
        terms = {}
        for name in self.weights:
            terms[name] = getattr(self, f"_{name}")(pred, batch, steps)
        total = sum(self.weights[name] * value for name, value in terms.items())
        if not terms:
            total = pred["joints_3d"].sum() * 0.0
        logged = {name: value.detach() for name, value in terms.items()}
        logged["total"] = total.detach()
        return total, logged

    def _joints_3d(self, pred, batch, steps):
        return torch.stack([joints_3d_l1_mm(s["joints_3d"], batch["joints_3d"], batch["has_3d"]) for s in steps]).mean()

    def _keypoints_2d(self, pred, batch, steps):
        target = batch["keypoints_2d"].float()
        return torch.stack([(s["keypoints_2d"].float() - target).abs().mean() for s in steps]).mean()

    def _heatmaps(self, pred, batch, steps):
        losses = []
        for heatmaps in pred["heatmaps"]:
            target = render_heatmaps(batch["keypoints_2d"].float(), heatmaps.shape[-1], self.heatmap_sigma)
            losses.append(F.mse_loss(heatmaps.float(), target))
        return torch.stack(losses).mean()

    def _pose_prior(self, pred, batch, steps):
        return self.prior.score(matrix_to_axis_angle(pred["rotmats"].float())).mean()

    def _pose_limits(self, pred, batch, steps):
        return self.prior.limit_loss(matrix_to_axis_angle(pred["rotmats"].float())).mean()

    def _shape_prior(self, pred, batch, steps):
        return (pred["betas"].float() ** 2).sum(-1).mean()

    @staticmethod
    def _knows_params(batch) -> torch.Tensor:
        """(B,) bool: the true pose and betas are the right-hand model's (has_mesh, not mirrored)."""
        return batch["has_mesh"] & ~batch["is_left"]

    def _pose_params(self, pred, batch, steps):
        valid = self._knows_params(batch)
        target = axis_angle_to_matrix(batch["pose"].float())                  # (B, 16, 3, 3)
        return torch.stack([masked_mean((s["rotmats"].float() - target) ** 2, valid) for s in steps]).mean()

    def _shape_params(self, pred, batch, steps):
        valid = self._knows_params(batch)
        target = batch["betas"].float()
        return torch.stack([masked_mean((s["betas"].float() - target[:, :s["betas"].shape[1]]) ** 2, valid)
                            for s in steps]).mean()

    def _camera(self, pred, batch, steps):
        target = camera_from_2d3d(batch["keypoints_2d"].float(), root_relative(batch["joints_3d"].float()))
        return torch.stack([masked_mean((s["camera"].float() - target).abs(), batch["has_3d"]) for s in steps]).mean()

    def _silhouette(self, pred, batch, steps):
        valid = batch["has_mask"]
        if not bool(valid.any()):
            return pred["vertices"].sum() * 0.0
        camera, vertices = pred["camera"][valid].float(), pred["vertices"][valid].float()
        projected = camera[:, None, :1] * vertices[..., :2] + camera[:, None, 1:]     # (b, V, 2) in [-1, 1]
        size = self.silhouette_size
        faces = self.faces.to(projected.device)
        rendered = soft_silhouette(normalized_to_pixels(projected, size), faces, size, self.silhouette_sigma)
        target = F.interpolate(batch["mask"][valid].float()[:, None], size=(size, size), mode="area")[:, 0]
        return (rendered - target).abs().mean()


class BaselineLoss(nn.Module):
    """The FreiHAND report's loss, L1 on root-relative 3D joints (millimetres, has_3d samples), plus
    Lcam on the baseline's weak-perspective camera (weight ``camera_weight``) so that its projected
    2D keypoints mean something (overlays, 2D PCK); the camera shares the last linear layer only.

    ``loss(pred, batch) -> (total, {"joints_3d", "camera", "total"})``; pred["joints_3d"] (B, 21, 3)
    metres, pred["camera"] (B, 3)."""

    def __init__(self, camera_weight: float = 1.0):
        super().__init__()
        self.camera_weight = camera_weight

    def forward(self, pred: dict, batch: dict) -> tuple[torch.Tensor, dict]:
        joints = joints_3d_l1_mm(pred["joints_3d"], batch["joints_3d"], batch["has_3d"])
        terms = {"joints_3d": joints.detach()}
        total = joints
        if self.camera_weight and "camera" in pred:
            target = camera_from_2d3d(batch["keypoints_2d"].float(), root_relative(batch["joints_3d"].float()))
            camera = masked_mean((pred["camera"].float() - target).abs(), batch["has_3d"])
            total = total + self.camera_weight * camera
            terms["camera"] = camera.detach()
        terms["total"] = total.detach()
        return total, terms
