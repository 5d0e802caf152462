"""Score the whole engine on photos with 3D ground truth, as ``handcap estimate`` runs on them.

Each photo goes through ``core.engine.Engine`` with the photo's own intrinsics (detection with the
search passes, network, fit), exactly as ``handcap estimate PHOTO --K`` would. The hand compared with
the truth is the engine's detection that overlaps the true keypoints' box the most (a photo where no
detection overlaps it counts as missed: ``found`` < ``count``). Beside the engine, the detector's own
3D (the landmark network's world landmarks) and 2D landmarks of the same detection are scored as a
reference: the numbers the engine has to beat.

The engine reports its 21 keypoints where hand landmarks are defined (the hand model's landmark
points, core.hand_model.landmark_points), as photo datasets annotate them. Synthetic renders carry
the model's own joint centres as their truth; since their true pose is known, the truth compared
with is then the true hand's landmark points (``landmark_truth``), so the definitions match.

Metrics per method (camera space, metres in, millimetres and pixels out):
  pa_mpjpe_mm, auc_0_50, auc_20_50  after Procrustes alignment (scale, rotation, translation)
  rr_mpjpe_mm, rr_median_mm          root-relative (wrist at the origin), no alignment: the hand's
                                     orientation counts
  err_2d_px, err_2d_median_px        keypoints in the photo's pixels against the projected truth
  per_joint_pa_mm                    (21,) PA error of each keypoint, FreiHAND order
"""

from __future__ import annotations

import sys
from typing import Optional

import numpy as np
from tqdm import tqdm

from training import metrics

ENGINE_NAME = "engine (handcap estimate)"
LANDMARKS_NAME = "landmark network (world + image landmarks)"
MIN_MATCH_IOU = 0.1        # a detection overlapping the true keypoints' box less than this is another hand


def keypoint_box(points: np.ndarray) -> np.ndarray:
    """(N, 2) pixels -> (4,) x0, y0, x1, y1."""
    return np.concatenate([points.min(0), points.max(0)])


def pick_detection(detections: list, true_2d: np.ndarray):
    """The detection whose box overlaps the true keypoints' (21, 2) box the most, or None."""
    from core.engine.detect import box_iou
    target = keypoint_box(true_2d)
    scored = [(box_iou(np.asarray(d.box, np.float64), target), i) for i, d in enumerate(detections)]
    best = max(scored, default=(0.0, -1))
    return best[1] if best[0] >= MIN_MATCH_IOU else None


def summarise(name: str, count: int, pred_3d: list, true_3d: list, pred_2d: list, true_2d: list) -> dict:
    """One JSON entry from per-photo (21, 3) metres and (21, 2) pixels of the photos where a hand was found."""
    entry = {"name": name, "count": count, "found": len(pred_3d)}
    if pred_3d:
        pred, true = np.stack(pred_3d), np.stack(true_3d)                 # (N, 21, 3) metres
        errors = metrics.pa_errors_mm(pred, true)                          # (N, 21)
        entry.update(metrics.keypoint_summary(errors))
        entry["per_joint_pa_mm"] = errors.mean(0).round(2).tolist()
        rel_pred, rel_true = pred - pred[:, :1], true - true[:, :1]
        entry.update(metrics.root_relative_summary(rel_pred, rel_true))
        entry["rr_median_mm"] = float(np.median(1000.0 * metrics.point_errors(rel_pred, rel_true)))
    if pred_2d:
        px = np.linalg.norm(np.stack(pred_2d) - np.stack(true_2d), axis=-1)   # (N, 21)
        entry["err_2d_px"], entry["err_2d_median_px"] = float(px.mean()), float(np.median(px))
    return entry


class LandmarkTruth:
    """``truth(sample) -> (21, 3)`` camera-space metres: a render's true hand's landmark points
    (open-hand pose and shape known: ``has_mesh``), else the sample's own ``joints_3d``."""

    def __init__(self):
        import torch
        from core.hand_model import HandLayer, load_hand_model
        from core.hand_model.landmark_points import LandmarkPoints
        self.torch = torch
        self.layers = {side: HandLayer(load_hand_model("open", side), torch.float64) for side in ("right", "left")}
        self.points = {side: LandmarkPoints(side).double() for side in ("right", "left")}

    def __call__(self, sample: dict) -> np.ndarray:
        joints = sample["joints_3d"].numpy().astype(np.float64)
        if not bool(sample.get("has_mesh", False)):
            return joints
        torch, side = self.torch, "left" if bool(sample["is_left"]) else "right"
        with torch.no_grad():
            out = self.layers[side](torch.as_tensor(sample["betas"][None], dtype=torch.float64),
                                    torch.as_tensor(sample["pose"][None], dtype=torch.float64), keypoints_only=True)
            points = self.points[side](out)[0].numpy()
        return points - out.keypoints[0, 0].numpy() + joints[0]       # placed as rendered (wrists coincide)


def evaluate_engine(raw, device: str = "auto", weights: Optional[str] = None, landmarks: str = "full") -> list[dict]:
    """JSON entries for the engine and for its detector's own landmarks on a dataset of raw samples
    (training/sample.py: image, K, joints_3d in camera space, keypoints_2d)."""
    from core.engine.pipeline import Engine, EngineOptions

    engine = Engine(EngineOptions(device=device, weights=weights, landmarks=landmarks))
    landmark_truth = LandmarkTruth()
    found = {"engine": ([], [], [], []), "landmarks": ([], [], [], [])}
    try:
        for index in tqdm(range(len(raw)), desc="engine", unit="img", file=sys.stderr):
            sample = raw[index]
            rgb = np.ascontiguousarray(sample["image"].numpy().transpose(1, 2, 0))
            K = sample["K"].numpy().astype(np.float64)
            true_3d = landmark_truth(sample)
            true_2d = sample["keypoints_2d"].numpy()
            detections = engine.detect(rgb)
            chosen = pick_detection(detections, true_2d)
            if bool(sample.get("has_mesh", False)):            # a render: its landmark points, seen
                seen = true_3d @ K.T
                true_2d = seen[:, :2] / seen[:, 2:]
            if chosen is None:
                continue
            hand = engine.estimate_frames([rgb], K, [[detections[chosen]]])[0][0]
            for key, value in zip(found["engine"], (hand.joints_3d, true_3d, hand.keypoints_2d, true_2d)):
                key.append(value)
            detection = detections[chosen]
            world = getattr(detection, "world_landmarks", None)
            if world is not None and detection.keypoints_2d is not None:
                for key, value in zip(found["landmarks"], (world, true_3d, detection.keypoints_2d, true_2d)):
                    key.append(value)
    finally:
        engine.close()
    return [summarise(ENGINE_NAME, len(raw), *found["engine"]),
            summarise(LANDMARKS_NAME, len(raw), *found["landmarks"])]
