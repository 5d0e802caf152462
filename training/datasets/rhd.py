"""The Rendered Hand Pose Dataset (Zimmermann & Brox, ICCV 2017), RHD_published_v2 layout.

    root/{split}/color/%05d.png            RGB, 320 x 320
    root/{split}/mask/%05d.png             labels: 0 background, 1 person, 2-17 left hand, 18-33 right hand
    root/{split}/anno_{split}.pickle       {sample_id: {'uv_vis': (42, 3), 'xyz': (42, 3) metres, 'K': (3, 3)}}

Keypoints 0-20 are the left hand, 21-41 the right; in each: wrist, then thumb tip -> base,
index tip -> base, ..., pinky tip -> base. They are reordered to the FreiHAND order (wrist, then
each finger base -> tip). No hand-model parameters: has_mesh False.
"""

from __future__ import annotations

import os
import pickle

import numpy as np
import torch

from .common import raw_sample, read_gray, read_rgb

SPLITS = ("training", "evaluation")
HANDS = ("dominant", "both")
# RHD index of each FreiHAND keypoint, within one hand's 21.
RHD_TO_FREIHAND = np.array([0, 4, 3, 2, 1, 8, 7, 6, 5, 12, 11, 10, 9, 16, 15, 14, 13, 20, 19, 18, 17])
LEFT_LABELS, RIGHT_LABELS = (2, 17), (18, 33)


class RHD(torch.utils.data.Dataset):
    """Raw samples of one RHD split, one per hand.

    hands: "dominant" - per image the hand with more visible keypoints (right on ties);
           "both"     - every hand with at least ``min_visible`` visible keypoints.
    Images whose chosen hand has fewer than ``min_visible`` visible keypoints are skipped.
    """

    def __init__(self, root: str, split: str = "training", hands: str = "dominant", min_visible: int = 1):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if hands not in HANDS:
            raise ValueError(f"hands must be one of {HANDS}, got {hands!r}")
        self.root, self.split = root, split
        with open(os.path.join(root, split, f"anno_{split}.pickle"), "rb") as f:
            self.annotations = pickle.load(f)
        self.items = []  # (sample id, is_left)
        for sample_id in sorted(self.annotations):
            visible = np.asarray(self.annotations[sample_id]["uv_vis"])[:, 2] > 0
            left, right = int(visible[:21].sum()), int(visible[21:].sum())
            if hands == "dominant":
                sides = [(left > right, max(left, right))]
            else:
                sides = [(True, left), (False, right)]
            self.items += [(sample_id, is_left) for is_left, count in sides if count >= min_visible]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        sample_id, is_left = self.items[index]
        anno = self.annotations[sample_id]
        hand = slice(0, 21) if is_left else slice(21, 42)
        uv = np.asarray(anno["uv_vis"], np.float32)[hand][RHD_TO_FREIHAND, :2]
        xyz = np.asarray(anno["xyz"], np.float32)[hand][RHD_TO_FREIHAND]
        image = read_rgb(os.path.join(self.root, self.split, "color", f"{sample_id:05d}.png"))
        labels = read_gray(os.path.join(self.root, self.split, "mask", f"{sample_id:05d}.png"))
        low, high = LEFT_LABELS if is_left else RIGHT_LABELS
        return raw_sample(image, np.asarray(anno["K"], np.float32), uv, xyz,
                          mask=(labels >= low) & (labels <= high), is_left=is_left)
