"""Render a synthetic hand dataset in the FreiHAND folder layout, or a contact sheet of samples.

    python -m training.synth --out DIR --count N [--split train|heldout] [--seed S] [--size 224]
    python -m training.synth --grid docs/synth_samples.png
"""

from __future__ import annotations

import argparse
import os

import cv2
import numpy as np

from .dataset import SyntheticHands
from .freihand_writer import write_freihand

BONES = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10), (10, 11), (11, 12),
         (0, 13), (13, 14), (14, 15), (15, 16), (0, 17), (17, 18), (18, 19), (19, 20)]


def draw_sample(sample: dict, keypoints: bool) -> np.ndarray:
    """(H, W, 3) BGR picture of a raw sample, with its skeleton and mask outline if asked."""
    image = np.ascontiguousarray(sample["image"].permute(1, 2, 0).numpy()[..., ::-1])
    if keypoints:
        points = np.round(sample["keypoints_2d"].numpy()).astype(int)
        for a, b in BONES:
            cv2.line(image, tuple(points[a]), tuple(points[b]), (255, 200, 0), 1, cv2.LINE_AA)
        for p in points:
            cv2.circle(image, tuple(p), 2, (0, 0, 255), -1)
        contours, _ = cv2.findContours(sample["mask"].numpy(), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(image, contours, -1, (0, 255, 0), 1)
    label = ("L" if bool(sample["is_left"]) else "R")
    cv2.putText(image, label, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 2, cv2.LINE_AA)
    return image


def write_grid(path: str, size: int = 160, seed: int = 0) -> str:
    """A 4x8 sheet: rows 1-3 train style (row 2 annotated), row 4 held-out style (annotated)."""
    rows = []
    for row, (split, annotate) in enumerate([("train", False), ("train", True), ("train", False), ("heldout", True)]):
        dataset = SyntheticHands(count=64, seed=seed, split=split, size=size)
        rows.append(np.concatenate([draw_sample(dataset[row * 8 + k], annotate) for k in range(8)], axis=1))
    sheet = np.concatenate(rows, axis=0)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    root, ext = os.path.splitext(path)
    tmp = root + ".tmp" + (ext or ".png")               # keep the extension: it picks the format
    if not cv2.imwrite(tmp, sheet, [cv2.IMWRITE_JPEG_QUALITY, 90]):
        raise ValueError(f"cannot write an image to {path}")
    os.replace(tmp, path)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.synth",
        description="Render the open hand model in natural poses over varied scenes, with exact ground truth "
                    "(3D keypoints, vertices, 2D keypoints, mask, pose, shape, intrinsics).")
    parser.add_argument("--out", help="folder for a dataset in the FreiHAND layout")
    parser.add_argument("--count", type=int, default=1000, help="number of samples (default: %(default)s)")
    parser.add_argument("--split", choices=["train", "heldout"], default="train",
                        help="'train' writes training/*, 'heldout' writes evaluation/* with scene settings "
                             "(skin tones, light, focal lengths, backgrounds) training never sees")
    parser.add_argument("--seed", type=int, default=0, help="sample i of a seed is always the same image")
    parser.add_argument("--size", type=int, default=224, help="image side in pixels (default: %(default)s)")
    parser.add_argument("--backgrounds", help="optional folder of photos to use as backgrounds too")
    parser.add_argument("--grid", metavar="PNG", help="write a contact sheet of samples instead")
    args = parser.parse_args(argv)
    if args.grid:
        print(write_grid(args.grid, seed=args.seed))
        return 0
    if not args.out:
        parser.error("give --out DIR (a dataset) or --grid PNG (a contact sheet)")
    if args.count < 1:
        parser.error("--count must be at least 1")
    print(write_freihand(args.out, args.count, args.split, args.seed, args.size, args.backgrounds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
