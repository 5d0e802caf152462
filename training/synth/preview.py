"""A contact sheet of synthetic samples, to look at before trusting them.

    python -m training.synth --grid docs/synth_samples.png

Rows alternate plain and annotated samples (2D keypoints as a coloured skeleton, the mask's
outline in white), first in the ``train`` style, then in the ``heldout`` style; each row is labelled.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from core.engine.overlay import FINGER_COLOURS
from core.hand_model.model import KEYPOINT_BONES

from .dataset import SyntheticHands

LABEL_HEIGHT = 22


def draw_sample(sample: dict, annotate: bool, tile: int) -> np.ndarray:
    """(tile, tile, 3) BGR picture of a raw sample; with ``annotate``, its skeleton and mask outline."""
    image = np.ascontiguousarray(sample["image"].permute(1, 2, 0).numpy()[..., ::-1])
    scale = tile / image.shape[0]
    image = cv2.resize(image, (tile, tile), interpolation=cv2.INTER_AREA)
    if annotate:
        mask = cv2.resize(sample["mask"].numpy(), (tile, tile), interpolation=cv2.INTER_NEAREST)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(image, contours, -1, (255, 255, 255), 1, cv2.LINE_AA)
        pixels = (sample["keypoints_2d"].numpy() + 0.5) * scale - 0.5                     # in the resized tile
        points = np.round(pixels * 4).astype(np.int32)                                    # 2 fractional bits
        for k, (a, b) in enumerate(KEYPOINT_BONES):
            cv2.line(image, tuple(points[a]), tuple(points[b]), FINGER_COLOURS[k // 4], 2, cv2.LINE_AA, shift=2)
        for k, p in enumerate(points):
            cv2.circle(image, tuple(p), 2 * 4, FINGER_COLOURS[max(k - 1, 0) // 4], -1, cv2.LINE_AA, shift=2)
    side = "left" if bool(sample["is_left"]) else "right"
    cv2.putText(image, side, (4, tile - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(image, side, (4, tile - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return image


def make_grid(seed: int = 0, columns: int = 6, tile: int = 176, size: int = 224, backgrounds: str = None) -> np.ndarray:
    """(H, W, 3) BGR sheet: 4 labelled rows of ``columns`` samples (train, train annotated,
    heldout, heldout annotated); samples 0.. of ``seed`` in each style."""
    rows = []
    for split in ("train", "heldout"):
        dataset = SyntheticHands(count=2 * columns, seed=seed, split=split, size=size, backgrounds=backgrounds)
        samples = [r.sample for r in dataset.render(range(2 * columns))]
        for annotate in (False, True):
            label = np.full((LABEL_HEIGHT, columns * tile, 3), 40, np.uint8)
            text = f"{split} style (seed {seed})" + (": 2D keypoints, mask outline" if annotate else "")
            cv2.putText(label, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
            chosen = samples[columns:] if annotate else samples[:columns]
            rows += [label, np.concatenate([draw_sample(s, annotate, tile) for s in chosen], axis=1)]
    return np.concatenate(rows, axis=0)


def write_grid(path: str, seed: int = 0, backgrounds: str = None) -> str:
    """Write ``make_grid`` to ``path`` (the extension picks the format) through a temporary file."""
    sheet = make_grid(seed=seed, backgrounds=backgrounds)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    root, ext = os.path.splitext(path)
    tmp = f"{root}.tmp{os.getpid()}{ext or '.png'}"
    if not cv2.imwrite(tmp, sheet):
        raise ValueError(f"cannot write an image to {path}")
    os.replace(tmp, path)
    return path
