"""Rendered ChArUco board clips filmed by a rig of cameras whose K, R, t are known, for checking
``handcap calibrate`` against the truth.

    python -m training.synth.board_clips --out DIR --views 2 --frames 40 --seed S [--size 960 720]

writes DIR/view1.avi ... (MJPG, 30 fps), DIR/cameras.json (the true cameras, view 1 at the origin) and
DIR/board.json (the board's layout). The cameras (``random_rig``) look at a point about a metre in front
of the first one, 20-90 degrees apart, 0.3-1 m from it. The board moves and tilts there. A plane seen by
a pinhole camera is exactly a homography of its picture: each frame is the board's image warped into each
camera (``cv2.warpPerspective``, rendered at twice the size and shrunk for anti-aliasing) over a smooth
random background, with a printed paper's contrast, mild blur and noise; a camera that sees the board's
back sees only the background.
"""

from __future__ import annotations

import argparse
import json
import os

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from core.calibration.spec import BoardSpec
from core.multiview.cameras import ViewCamera, save_cameras

BOARD = BoardSpec(7, 5, 0.05, 0.037, "5X5_100")     # 35 x 25 cm: an A3 print
ANGLES_DEG = (20.0, 90.0)          # between a camera's view direction and the first camera's
BASELINE_M = (0.3, 1.0)            # camera centre to the first camera's
DEPTH_M = (0.8, 1.2)               # the first camera to the point the cameras look at
TEXTURE_PX = 96                    # board picture pixels per square
SUPERSAMPLE = 2


def look_at(centre: np.ndarray, target: np.ndarray, roll: float = 0.0) -> np.ndarray:
    """(3, 3) R of a camera at ``centre`` looking at ``target`` (OpenCV axes, y down; world y is down):
    rows are the camera's x, y, z axes in world coordinates, turned by ``roll`` radians about z."""
    z = (target - centre) / np.linalg.norm(target - centre)
    x = np.cross([0.0, 1.0, 0.0], z)
    x /= np.linalg.norm(x)
    R = np.stack([x, np.cross(z, x), z])
    return Rotation.from_rotvec([0, 0, roll]).as_matrix() @ R


def random_rig(rng: np.random.Generator, views: int, size: tuple) -> tuple[list[ViewCamera], np.ndarray]:
    """``views`` cameras (view 0 identity) looking at one point (returned, metres in view 0's frame): focal
    length 0.8-1.3 image widths, principal point near the centre; the others ANGLES_DEG from the first
    camera's direction, on alternate sides, BASELINE_M from it, a little above or below."""
    width, height = size

    def intrinsics():
        f = rng.uniform(0.8, 1.3) * width
        return np.array([[f, 0, (width - 1) / 2 + rng.uniform(-0.02, 0.02) * width],
                         [0, f * rng.uniform(0.998, 1.002), (height - 1) / 2 + rng.uniform(-0.02, 0.02) * height],
                         [0, 0, 1]])

    target = np.array([0.0, 0.0, rng.uniform(*DEPTH_M)])
    cameras = [ViewCamera(intrinsics(), np.eye(3), np.zeros(3), (width, height))]
    for v in range(1, views):
        while True:
            angle = np.radians(rng.uniform(*ANGLES_DEG)) * (1 if v % 2 else -1)
            elevation = np.radians(rng.uniform(-15, 15))
            distance = rng.uniform(0.6, 1.4) * target[2]
            direction = Rotation.from_euler("yx", [angle, elevation]).apply([0.0, 0.0, -1.0])
            centre = target + distance * direction
            if BASELINE_M[0] <= np.linalg.norm(centre) <= BASELINE_M[1]:
                break
        R = look_at(centre, target + rng.uniform(-0.05, 0.05, 3), np.radians(rng.uniform(-5, 5)))
        cameras.append(ViewCamera(intrinsics(), R, -R @ centre, (width, height)))
    return cameras, target


def board_motion(rng: np.random.Generator, frames: int, cameras: list, target: np.ndarray) -> list:
    """Per frame (R (3, 3), t (3,)): board frame -> view 0 frame. The board's centre wanders 10-15 cm around
    ``target``; it faces the cameras' mean direction, tilted up to 35 degrees and turned up to 25 in plane."""
    facing = np.mean([(c.centre - target) / np.linalg.norm(c.centre - target) for c in cameras], 0)
    base = look_at(target + facing, target).T           # columns: board x, y, z(into the board) in view 0
    time = np.linspace(0, 1, frames)
    phases, speeds = rng.uniform(0, 2 * np.pi, 6), rng.uniform(0.7, 1.6, 6)
    wave = np.sin(2 * np.pi * speeds[None] * time[:, None] + phases[None])        # (F, 6)
    w, h = BOARD.size_m
    poses = []
    for k in range(frames):
        turn = Rotation.from_euler("xyz", [np.radians(35) * wave[k, 0], np.radians(35) * wave[k, 1],
                                           np.radians(25) * wave[k, 2]]).as_matrix()
        R = base @ turn
        centre = target + np.array([0.15 * wave[k, 3], 0.10 * wave[k, 4], 0.15 * wave[k, 5]])
        poses.append((R, centre - R @ np.array([w / 2, h / 2, 0.0])))
    return poses


def background(rng: np.random.Generator, size: tuple) -> np.ndarray:
    """(H, W) uint8 a smooth random grey backdrop with a few soft shapes."""
    width, height = size
    noise = rng.normal(0, 1, (height // 16 + 2, width // 16 + 2))
    image = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
    image = 120 + 35 * image / (np.abs(image).max() + 1e-9)
    for _ in range(6):
        centre = (int(rng.uniform(0, width)), int(rng.uniform(0, height)))
        cv2.circle(image, centre, int(rng.uniform(0.03, 0.12) * width), float(rng.uniform(50, 200)), -1)
    return cv2.GaussianBlur(image, (0, 0), 3).clip(0, 255).astype(np.uint8)


def render_view(camera: ViewCamera, board_R: np.ndarray, board_t: np.ndarray, texture: np.ndarray,
                backdrop: np.ndarray, rng: np.random.Generator, margin: int) -> np.ndarray:
    """(H, W) uint8 one camera's picture of the board at pose (board_R, board_t) (board -> view 0)."""
    width, height = camera.image_size
    R = camera.R @ board_R                              # board -> this camera
    t = camera.R @ board_t + camera.t
    s = BOARD.square_m / TEXTURE_PX
    to_board = np.array([[s, 0, (0.5 - margin) * s], [0, s, (0.5 - margin) * s], [0, 0, 1]])   # texture px -> m
    up = np.array([[SUPERSAMPLE, 0, (SUPERSAMPLE - 1) / 2], [0, SUPERSAMPLE, (SUPERSAMPLE - 1) / 2], [0, 0, 1]])
    H = up @ camera.K @ np.column_stack([R[:, 0], R[:, 1], t]) @ to_board
    big = cv2.resize(backdrop, (width * SUPERSAMPLE, height * SUPERSAMPLE), interpolation=cv2.INTER_LINEAR)
    corners = np.array([[0, 0], [1, 0], [1, 1], [0, 1]]) * np.array(BOARD.size_m)
    depth = (corners @ R[:, :2].T + t)[:, 2]
    if np.all(depth > 0.05) and np.dot(R[:, 2], t) > 0:          # in front, and its front faces the camera
        gain, floor = rng.uniform(0.75, 1.0), rng.uniform(20, 50)
        printed = (floor + (gain * 235 - floor) * (texture / 255.0)).astype(np.uint8)
        cv2.warpPerspective(printed, H, big.shape[::-1], dst=big, flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_TRANSPARENT)
    image = cv2.resize(big, (width, height), interpolation=cv2.INTER_AREA).astype(np.float64)
    image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 0.9))
    return (image + rng.normal(0, 2.0, image.shape)).clip(0, 255).astype(np.uint8)


def render_clips(out: str, views: int = 2, frames: int = 40, seed: int = 0, size: tuple = (960, 720),
                 fps: float = 30.0) -> list[str]:
    """Write one rig's board clips, cameras.json and board.json into ``out``; returns the clips' paths."""
    rng = np.random.default_rng(seed)
    cameras, target = random_rig(rng, views, size)
    poses = board_motion(rng, frames, cameras, target)
    margin = TEXTURE_PX // 2
    texture = BOARD.image(TEXTURE_PX, margin).astype(np.float64)
    os.makedirs(out, exist_ok=True)
    paths = []
    for v, camera in enumerate(cameras):
        backdrop = background(rng, size)
        path = os.path.join(out, f"view{v + 1}.avi")
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
        writer.set(cv2.VIDEOWRITER_PROP_QUALITY, 95)
        for R, t in poses:
            gray = render_view(camera, R, t, texture, backdrop, rng, margin)
            writer.write(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
        writer.release()
        paths.append(path)
    save_cameras(os.path.join(out, "cameras.json"), cameras)
    with open(os.path.join(out, "board.json"), "w", encoding="utf-8") as f:
        json.dump({**BOARD.to_json(), "seed": seed, "frames": frames}, f, indent=1)
    return paths


def calibrate_arguments(out: str, paths: list) -> list[str]:
    """The ``handcap calibrate`` arguments for clips written by ``render_clips`` into ``out``."""
    b = BOARD
    return ["calibrate", *paths, "--board", str(b.squares_x), str(b.squares_y), str(b.square_m), str(b.marker_m),
            "--dictionary", b.dictionary, "--stride", "1", "-o", os.path.join(out, "calibrated.json")]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.synth.board_clips", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for the clips, cameras.json and board.json")
    parser.add_argument("--views", type=int, default=2, choices=range(2, 7), metavar="V", help="cameras (2-6)")
    parser.add_argument("--frames", type=int, default=40, help="frames per clip (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, nargs=2, default=[960, 720], metavar=("W", "H"),
                        help="image size in pixels (default: %(default)s)")
    args = parser.parse_args(argv)
    paths = render_clips(args.out, args.views, args.frames, args.seed, tuple(args.size))
    print(f"{len(paths)} clips of {args.frames} frames in {args.out}; true cameras: "
          f"{os.path.join(args.out, 'cameras.json')}\ncalibrate them with:\n  handcap "
          + " ".join(calibrate_arguments(args.out, paths)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
