"""The user-path stage's inputs, made from the bundled render (sides known by construction).

    python tests/user_path/make_media.py OUT_DIR [--frames N]

- ``two_hands.jpg`` (1024x512): the bundled right hand, and beside it its mirror image (a left
  hand): a photo whose two hands' sides are known.
- ``two_hands.mp4`` (640x360, N frames at 30 frames/s): that picture, scaled, gliding over a grey
  gradient; both hands are inside every frame.
- ``wild_5.jpg``: a real photo of two hands, copied from ../shared/real_images when it is there.
- ``views/``: a multi-view capture ``views.npz`` of a right hand (core's hand layer) seen by three exact
  cameras, with each camera's photo (the keypoints drawn where K (R x + t) puts them) and ``cameras.json``
  (tests/test_blender_views.py); its source paths name ``--media-path``/views, where Blender finds the media.
- ``rendered_views/``: a rendered hand (training/synth/multiview.py) seen by three exact cameras: view0-2.png,
  cameras.json, and side.txt, the hand's true side: Estimate Hand in Multi-View runs the engine on it.
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


def multi_view(folder: str, seen_as: str) -> None:
    """``folder``/views.npz, its three photos and cameras.json; the capture names the photos under ``seen_as``."""
    import json
    import sys
    sys.path.insert(0, REPO)
    from tests.test_blender_support import save
    from tests.test_blender_views import draw_keypoints_background, views_capture
    os.makedirs(folder, exist_ok=True)
    capture = views_capture(folder, frames=1, backgrounds=draw_keypoints_background)
    views = capture.views
    views.source_path = np.array([os.path.join(seen_as, os.path.basename(p)) for p in views.source_path])
    capture.source_path = str(views.source_path[0])
    save(capture, os.path.join(folder, "views.npz"))
    with open(os.path.join(folder, "cameras.json"), "w") as f:
        json.dump([{"K": views.K[c].tolist(), "R": views.R[c].tolist(), "t": views.t[c].tolist()}
                   for c in range(views.num_views)], f)


RENDERED_SEED = 9107      # training.synth.multiview's held-out scene 0 of this seed: a left hand, clear in all 3 views


def rendered_views(folder: str) -> None:
    """``folder``/view0.png, view1.png, view2.png, cameras.json and side.txt: a rendered scene seen by three
    exact cameras (training/synth/multiview.py), for Estimate Hand in Multi-View through the installed engine."""
    import json
    import sys
    import tempfile
    sys.path.insert(0, REPO)
    from training.synth.multiview import sample_folder, write_multiview
    with tempfile.TemporaryDirectory() as tmp:
        write_multiview(tmp, count=1, views=3, seed=RENDERED_SEED, progress=False)
        sample = sample_folder(tmp, 0)
        os.makedirs(folder, exist_ok=True)
        for name in ("view0.png", "view1.png", "view2.png", "cameras.json"):
            shutil.copy(os.path.join(sample, name), os.path.join(folder, name))
        with open(os.path.join(sample, "truth.json"), encoding="utf-8") as f:
            side = json.load(f)["side"]
    with open(os.path.join(folder, "side.txt"), "w", encoding="utf-8") as f:
        f.write(side + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="folder for the pictures and the clip")
    parser.add_argument("--frames", type=int, default=24, help="frames of the clip (default: %(default)s)")
    parser.add_argument("--media-path", default="", help="the folder OUT as Blender sees it (default: OUT)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    picture = two_hands()
    cv2.imwrite(os.path.join(args.out, "two_hands.jpg"), picture, [cv2.IMWRITE_JPEG_QUALITY, 95])
    glide(picture, os.path.join(args.out, "two_hands.mp4"), args.frames)
    if os.path.isfile(REAL):
        shutil.copy(REAL, os.path.join(args.out, "wild_5.jpg"))
    multi_view(os.path.join(args.out, "views"), os.path.join(args.media_path or args.out, "views"))
    rendered_views(os.path.join(args.out, "rendered_views"))
    print(f"media: {sorted(os.listdir(args.out))}")


if __name__ == "__main__":
    main()
