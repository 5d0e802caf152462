"""From the network's output and the detections to fitted hands in the camera (right-hand frame).

Each hand is fitted from up to two starts, in one batch:
  - the model posed onto the landmark network's world landmarks (3D, metric), where the detection
    has them: on real photos the best 3D evidence there is;
  - the HAMR network's own pose, with its joints as the 3D evidence.
Each start is turned and placed by PnP onto the 2D keypoints, then fitted (``HandFitter``), and of
a hand's fits the one whose landmark points land closer to the 2D landmarks is kept. World landmarks
sometimes disagree with their own 2D landmarks (a fist seen along the thumb, a hand the landmark
network reads the wrong way in depth); the fit from them then stays tens of pixels off the
landmarks, and the network's start is the way out. Chosen on 264 held-out synthetic renders (never
on ../shared/real3d): keeping the closer fit took PA-MPJPE 20.6 -> 20.0 mm and root-relative
42.5 -> 40.1 mm against the world-landmark start alone (retrying only fits over 3% of the hand's
size off: 20.2 / 39.9, for a 17% retry rate; the fit's cost hardly grows with the batch, so
both starts always run).

Units: metres, pixels, radians. Left hands arrive mirrored (core.engine.fitting).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from core.crops import CROP_MARGIN, crop_to_source
from core.hand_model.inverse_kinematics import pose_from_keypoints

from .fitting import HandFitter, align_to_keypoints, project_points, wrist_position


def evidence_targets(frames, items, out, matrices, input_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, 21, 2) 2D targets (pixels, right-hand frame) and (N, 21) their weights in [0, 1] per
    detection: its landmarks (weight 1), or without landmarks the network's heatmap keypoints,
    weighted by their confidence."""
    targets, weights = [], []
    for i, (f, d) in enumerate(items):
        width = frames[f].shape[1]
        if d.keypoints_2d is not None:
            points, weight = d.keypoints_2d, np.ones(21)
        else:
            points = crop_to_source(out["heatmap_keypoints"][i], matrices[i], input_size)
            weight = np.clip(out["heatmap_confidence"][i], 0.0, 1.0)
        if d.side == "left":
            points = np.stack([width - 1 - points[:, 0], points[:, 1]], axis=1)
        targets.append(points)
        weights.append(weight)
    return np.asarray(targets, np.float64), np.asarray(weights, np.float64)


class HandPlacer:
    """``place(frames, items, out, matrices, centres, sides, hand_sizes, Ks)`` -> fitted right hands."""

    def __init__(self, fitter: HandFitter, device: torch.device, input_size: int, refine: bool = True):
        self.fitter, self.device, self.input_size, self.refine = fitter, device, input_size, refine

    def _tensor(self, a) -> torch.Tensor:
        return torch.as_tensor(np.asarray(a), dtype=torch.float32, device=self.device)

    def world_starts(self, items, out) -> tuple[list[int], np.ndarray, np.ndarray]:
        """For the detections with world landmarks: their indices, the pose (n, 16, 3) that puts the
        model's landmark points onto them, and those points (n, 21, 3) relative to the wrist keypoint
        (right-hand frame, metres)."""
        have = [i for i, (_, d) in enumerate(items) if getattr(d, "world_landmarks", None) is not None]
        if not have:
            return have, np.zeros((0, 16, 3)), np.zeros((0, 21, 3))
        world = np.stack([np.asarray(items[i][1].world_landmarks, np.float64) for i in have])
        world[[k for k, i in enumerate(have) if items[i][1].side == "left"], :, 0] *= -1
        betas, ones = np.asarray(out["betas"][have], np.float64), np.ones(len(have))
        points = self.fitter.kinematics.points                 # numpy: a few hands cost less than in torch
        rest = points(np.zeros((len(have), 16, 3)), betas, ones, derivatives=False)[0]
        with torch.no_grad():
            pose = pose_from_keypoints(self._tensor(rest), self._tensor(world)).cpu().numpy().astype(np.float64)
        return have, pose, points(pose, betas, ones, derivatives=False)[0]

    def place(self, frames, items, out, matrices, centres, sides, hand_sizes, Ks):
        """Network output -> (pose, betas, layer transl, camera-space keypoints, pixels, fit energy),
        one row per item, of right hands in the right-hand frame (see the module docstring)."""
        count = len(items)
        targets, weights = evidence_targets(frames, items, out, matrices, self.input_size)
        wrists = np.stack([wrist_position(out["camera"][i:i + 1], centres[i:i + 1], sides[i:i + 1], Ks[i])[0]
                           for i in range(count)])
        network_joints = np.asarray(out["joints_3d"], np.float64)
        network_joints = network_joints - network_joints[:, :1]
        have, world_pose, world_points = self.world_starts(items, out)
        # starts: one per item from the network, one more per item with world landmarks
        owner = np.concatenate([np.arange(count), np.asarray(have, int)]).astype(int)      # (M,) item of each start
        pose_init = np.concatenate([out["pose"], world_pose]).astype(np.float64)           # (M, 16, 3)
        evidence = np.concatenate([network_joints, world_points])                          # (M, 21, 3)
        wrists = wrists[owner]
        for s, i in enumerate(owner):          # each start turned and placed to match the 2D keypoints
            aligned = align_to_keypoints(evidence[s], targets[i], weights[i], Ks[i]) if self.refine else None
            if aligned is not None:
                rotation, wrists[s] = aligned
                root = rotation @ cv2.Rodrigues(pose_init[s, 0])[0]
                pose_init[s, 0] = cv2.Rodrigues(root)[0][:, 0]
                evidence[s] = evidence[s] @ rotation.T

        box = hand_sizes[owner] / CROP_MARGIN
        from_landmarks = np.array([items[i][1].keypoints_2d is not None for i in owner], np.float64)
        fits = self.fitter.fit(pose_init, out["betas"][owner], wrists, Ks[owner], targets[owner], weights[owner],
                               evidence, box, from_landmarks)
        fit = fits.take(self._closest(owner, fits.misfit, count))
        keypoints = project_points(torch.as_tensor(fit.points), torch.as_tensor(Ks, dtype=torch.float64)).numpy()
        return fit.pose, fit.betas, fit.transl, fit.points, keypoints, fit.energy

    @staticmethod
    def _closest(owner: np.ndarray, misfit: np.ndarray, count: int) -> np.ndarray:
        """(count,) for each item, the start (index into ``owner``) with the smallest 2D ``misfit``;
        on a tie the world-landmark start (listed later)."""
        best = np.arange(count)
        for s in range(count, len(owner)):
            i = owner[s]
            if misfit[s] <= misfit[best[i]]:
                best[i] = s
        return best

