"""The user-path stage's inputs, made from the bundled render (sides known by construction).

    python tests/user_path/make_media.py OUT_DIR [--frames N]

- ``two_hands.jpg`` (1024x512): the bundled right hand, and beside it its mirror image (a left
  hand): a photo whose two hands' sides are known.
- ``two_hands.mp4`` (640x360, N frames at 30 frames/s): that picture, scaled, gliding over a grey
  gradient; both hands are inside every frame.
- ``wild_5.jpg``: a real photo of two hands, copied from ../shared/real_images when it is there.
"""

from __future__ import annotations

import argparse
import os
import shutil

import cv2
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(REPO, "core", "assets", "demo_hand.jpg")
REAL = os.path.join(os.path.dirname(REPO), "shared", "real_images", "in_the_wild", "wild_5.jpg")


def two_hands() -> np.ndarray:
    """(512, 1024, 3) BGR: the mirrored render (a left hand) on the left, the render (right hand) on the right."""
    right = cv2.imread(DEMO)
    return np.concatenate([right[:, ::-1], right], axis=1)


def glide(picture: np.ndarray, path: str, frames: int, size=(640, 360), fps: float = 30.0) -> None:
    """``picture`` scaled to 80% of the frame height, moving left and right over a grey gradient."""
    width, height = size
    scale = 0.8 * height / picture.shape[0]
    small = cv2.resize(picture, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    h, w = small.shape[:2]
    background = np.tile(np.linspace(90, 170, width, dtype=np.uint8)[None, :, None], (height, 1, 3))
    writer = cv2.VideoWriter(path + ".part.mp4", cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for i in range(frames):
        frame = background.copy()
        x = int((width - w) * (0.5 - 0.5 * np.cos(2 * np.pi * i / frames)))
        y = (height - h) // 2
        frame[y:y + h, x:x + w] = small
        writer.write(frame)
    writer.release()
    os.replace(path + ".part.mp4", path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="folder for the pictures and the clip")
    parser.add_argument("--frames", type=int, default=24, help="frames of the clip (default: %(default)s)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    picture = two_hands()
    cv2.imwrite(os.path.join(args.out, "two_hands.jpg"), picture, [cv2.IMWRITE_JPEG_QUALITY, 95])
    glide(picture, os.path.join(args.out, "two_hands.mp4"), args.frames)
    if os.path.isfile(REAL):
        shutil.copy(REAL, os.path.join(args.out, "wild_5.jpg"))
    print(f"media: {sorted(os.listdir(args.out))}")


if __name__ == "__main__":
    main()
