"""training/blender_views_figure.py's scores: a disc rendered 3 px right and 4 px down of the true one."""

from __future__ import annotations

import cv2
import numpy as np

from training.blender_views_figure import outline_crop, view_scores


def disc(centre, radius=40, size=(200, 160)) -> np.ndarray:
    image = np.zeros(size[::-1], np.uint8)
    cv2.circle(image, centre, radius, 255, -1)
    return image


def test_scores_give_the_shift_and_the_overlap():
    truth, drawn = disc((90, 70)), disc((93, 74))
    alpha = drawn.astype(np.float32) / 255.0
    rng = np.random.default_rng(0)
    landmarks = rng.uniform(0, 100, (21, 2))
    scores = view_scores(alpha, truth, landmarks + [3, 4], landmarks)
    np.testing.assert_allclose(scores["centroid_offset_px"], [3, 4], atol=0.1)
    a, b = truth > 0, drawn > 0
    assert abs(scores["iou"] - (a & b).sum() / (a | b).sum()) < 1e-9 and 0.8 < scores["iou"] < 0.95
    assert abs(scores["landmark_px"] - 5.0) < 1e-9


def test_outline_crop_frames_the_render(tmp_path):
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.full((160, 200, 3), 90, np.uint8))
    rgba = np.zeros((160, 200, 4), np.float32)
    rgba[..., 3] = disc((190, 20)) / 255.0                     # near the corner: the crop pads
    crop = outline_crop(rgba, str(photo), 200, 160)
    assert crop.shape == (160, 200, 3)
    yellow = (crop[..., 2] > 200) & (crop[..., 1] > 180) & (crop[..., 0] < 80)
    ys, xs = np.nonzero(yellow)
    assert yellow.any() and abs(xs.mean() - 100) < 8 and abs(ys.mean() - 80) < 8   # the outline, centred
