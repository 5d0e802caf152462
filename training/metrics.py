"""Hand pose metrics (numpy, float64 inside), FreiHAND-style.

Units: 3D inputs are in metres; functions whose name ends in ``_mm`` return millimetres.
Alignment: "PA" = per-sample Procrustes alignment with scale (rotation, uniform scale and
translation of the prediction that best fit the ground truth in least squares), as FreiHAND's
evaluation does for keypoints and vertices.
"""

from __future__ import annotations

import numpy as np
import torch

THRESHOLDS_0_50_MM = np.linspace(0.0, 50.0, 100)
THRESHOLDS_20_50_MM = np.linspace(20.0, 50.0, 100)


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N, K, 3) predictions, (N, K, 3) targets -> (N, K, 3): each prediction under the similarity
    transform (s, R, t) minimising ||s R p + t - g||^2 (Umeyama; R a proper rotation)."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    mu_p, mu_g = pred.mean(1, keepdims=True), gt.mean(1, keepdims=True)
    p, g = pred - mu_p, gt - mu_g
    var_p = (p ** 2).sum((1, 2))                                   # (N,)
    u, sigma, vt = np.linalg.svd(np.einsum("nki,nkj->nij", g, p))  # covariance g^T p, (N, 3, 3)
    d = np.sign(np.linalg.det(u @ vt))                             # -1 where a reflection fits better
    sigma[:, 2] *= d
    u[:, :, 2] *= d[:, None]
    rotation = u @ vt                                              # (N, 3, 3), maps p to g
    scale = sigma.sum(1) / np.maximum(var_p, 1e-30)
    return scale[:, None, None] * np.einsum("nij,nkj->nki", rotation, p) + mu_g


def point_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N, K, D), (N, K, D) -> (N, K) Euclidean distances, in the inputs' units."""
    return np.linalg.norm(np.asarray(pred, np.float64) - np.asarray(gt, np.float64), axis=-1)


def pa_errors_mm(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N, K, 3), (N, K, 3) metres -> (N, K) millimetre distances after Procrustes alignment."""
    return 1000.0 * point_errors(procrustes_align(pred, gt), gt)


def pck_curve(errors: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(N, K) errors, (T,) thresholds (same units) -> (T,) fraction of errors <= each threshold."""
    errors = np.asarray(errors, np.float64).reshape(-1)
    return (errors[None, :] <= np.asarray(thresholds, np.float64)[:, None]).mean(1)


def auc(thresholds: np.ndarray, pck: np.ndarray) -> float:
    """Area under a PCK curve by the trapezoid rule, normalised by the threshold range: in [0, 1]."""
    thresholds, pck = np.asarray(thresholds, np.float64), np.asarray(pck, np.float64)
    area = np.sum((pck[1:] + pck[:-1]) * np.diff(thresholds)) / 2
    return float(area / (thresholds[-1] - thresholds[0]))


def nearest_distances(source: np.ndarray, target: np.ndarray, chunk: int = 16) -> np.ndarray:
    """(N, P, 3), (N, Q, 3) -> (N, P): distance from each source point to its nearest target point."""
    source, target = torch.as_tensor(np.asarray(source, np.float64)), torch.as_tensor(np.asarray(target, np.float64))
    out = [torch.cdist(source[i:i + chunk], target[i:i + chunk]).min(-1).values for i in range(0, len(source), chunk)]
    return torch.cat(out).numpy()


def f_score(pred: np.ndarray, gt: np.ndarray, threshold: float) -> np.ndarray:
    """FreiHAND's F-score per sample: (N, P, 3), (N, Q, 3) point sets, threshold in their units -> (N,).

    precision = fraction of predicted points closer than ``threshold`` to the nearest target point,
    recall = fraction of target points closer than it to the nearest predicted point,
    F = 2 precision recall / (precision + recall) (0 when both are 0). Strict ``<`` as FreiHAND.
    """
    precision = (nearest_distances(pred, gt) < threshold).mean(1)
    recall = (nearest_distances(gt, pred) < threshold).mean(1)
    total = precision + recall
    return np.where(total > 0, 2 * precision * recall / np.where(total > 0, total, 1), 0.0)


def pck_2d(pred: np.ndarray, gt: np.ndarray, threshold: float, visible: np.ndarray = None) -> float:
    """Fraction of 2D keypoints within ``threshold`` of the target (same units as the points;
    for a fraction of the box size, give points normalised by the box). (N, K, 2), (N, K, 2),
    optional (N, K) bool mask of the keypoints to count."""
    close = point_errors(pred, gt) <= threshold
    if visible is not None:
        close = close[np.asarray(visible, bool)]
    return float(close.mean()) if close.size else float("nan")


def keypoint_summary(errors_mm: np.ndarray) -> dict:
    """(N, K) PA-aligned keypoint errors in mm (``pa_errors_mm``) -> pa_mpjpe_mm, auc_0_50, auc_20_50
    (AUCs of the 3D PCK curves over 0-50 mm and 20-50 mm) and the 0-50 mm curve itself."""
    curve = pck_curve(errors_mm, THRESHOLDS_0_50_MM)
    return {"pa_mpjpe_mm": float(np.mean(errors_mm)), "auc_0_50": auc(THRESHOLDS_0_50_MM, curve),
            "auc_20_50": auc(THRESHOLDS_20_50_MM, pck_curve(errors_mm, THRESHOLDS_20_50_MM)),
            "pck_curve": {"thresholds_mm": THRESHOLDS_0_50_MM.tolist(), "pck": curve.tolist()}}


def root_relative_summary(pred: np.ndarray, gt: np.ndarray) -> dict:
    """(N, K, 3), (N, K, 3) root-relative keypoints in metres, NOT aligned -> rr_mpjpe_mm and
    rr_auc_20_50 (the 3D PCK AUC over 20-50 mm of the HAMR paper's RHD/STB tables, ground-truth
    scale). Unlike the PA metrics these count the global orientation of the hand as well."""
    errors_mm = 1000.0 * point_errors(pred, gt)
    return {"rr_mpjpe_mm": float(np.mean(errors_mm)),
            "rr_auc_20_50": auc(THRESHOLDS_20_50_MM, pck_curve(errors_mm, THRESHOLDS_20_50_MM))}


def mesh_scores(pred_m: np.ndarray, gt_m: np.ndarray) -> dict:
    """Per-sample vertex metrics of (N, V, 3) predicted and target meshes in metres (same topology),
    after PA alignment -> {"pa_mpvpe_mm", "f5", "f15"}: (N,) arrays (F-scores at 5 mm and 15 mm)."""
    aligned = procrustes_align(pred_m, gt_m)
    return {"pa_mpvpe_mm": 1000.0 * point_errors(aligned, gt_m).mean(1),
            "f5": f_score(aligned, gt_m, 0.005), "f15": f_score(aligned, gt_m, 0.015)}


def depth_errors_mm(pred: np.ndarray, gt: np.ndarray) -> dict:
    """(N, K, 3), (N, K, 3) camera-space keypoints in metres, keypoint 0 the root (wrist), NOT aligned ->
    wrist_depth_mm: mean |z error| of the root (how far off the hand is placed along the camera's
    axis), rr_depth_mm: mean |z error| of the root-relative keypoints (depth within the hand)."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    rel = (pred[..., 2] - pred[:, :1, 2]) - (gt[..., 2] - gt[:, :1, 2])
    return {"wrist_depth_mm": float(1000.0 * np.abs(pred[:, 0, 2] - gt[:, 0, 2]).mean()),
            "rr_depth_mm": float(1000.0 * np.abs(rel).mean())}
