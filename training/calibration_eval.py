"""How close ``handcap calibrate`` comes to the true cameras of synthetic rigs.

    python -m training.calibration_eval board --rigs N --views V --seed S [--frames 40] [--out DIR]
        renders N rigs of board clips (training.synth.board_clips), runs ``handcap calibrate`` on each
        (the command itself) and compares the cameras file it writes with the truth;
    python -m training.calibration_eval hands --rigs N --views V --seed S [--frames 120] [--noise-px 1.5]
        [--outliers 0.05]: calibration from the hands alone on synthetic correspondences: the landmark
        points of a hand moving like the video benchmark's hands (training.synth.motion) projected into
        the true cameras, with Gaussian noise, a share of outliers (10-80 px off) and 10% of the frames
        missed per view. This tests the geometry (essential matrix, bundle adjustment, scale from the hand),
        not the detector. The scale is reported from the mean hand (what the command does) and from the
        true hand's bones (the geometry alone);
    python -m training.calibration_eval clips DIR [--stride 2]: ``handcap calibrate --hands`` (the engine's
        detector on rendered video) on every DIR/clip_NNN/ written by ``python -m training.synth.multiview
        --clip`` (view0.mp4 ..., cameras.json, truth.npz), given the true intrinsics and frame offsets.

Per camera v >= 2: rotation error (degrees between R and the true R), position error of the camera centre
(mm, and % of the true baseline to camera 1); per camera, focal length error (%).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import tempfile

import numpy as np

from blender_addon.output_files import write_bytes
from core.multiview.cameras import load_cameras


def compare(truth: list, estimate: list) -> list[dict]:
    """Per view, the errors of ``estimate`` (ViewCameras) against ``truth``."""
    rows = []
    for v, (t, e) in enumerate(zip(truth, estimate)):
        cos = np.clip((np.trace(e.R @ t.R.T) - 1) / 2, -1, 1)
        baseline = np.linalg.norm(t.centre)
        rows.append({"view": v + 1, "rotation_deg": float(np.degrees(np.arccos(cos))),
                     "position_mm": float(1000 * np.linalg.norm(e.centre - t.centre)),
                     "position_pct_baseline": float(100 * np.linalg.norm(e.centre - t.centre) / baseline) if v else 0.0,
                     "baseline_m": float(baseline),
                     "focal_pct": float(100 * abs(e.K[0, 0] / t.K[0, 0] - 1))})
    return rows


def board_rigs(rigs: int, views: int, seed: int, frames: int, out: str, size: tuple) -> list[dict]:
    from core.cli import main as handcap
    from training.synth.board_clips import calibrate_arguments, render_clips
    results = []
    for k in range(rigs):
        folder = os.path.join(out, f"rig{k + 1}")
        paths = render_clips(folder, views, frames, seed + k, size)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            code = handcap(calibrate_arguments(folder, paths))
        print(printed.getvalue().rstrip())
        if code != 0:
            results.append({"rig": k + 1, "seed": seed + k, "failed": code})
            continue
        rows = compare(load_cameras(os.path.join(folder, "cameras.json")),
                       load_cameras(os.path.join(folder, "calibrated.json")))
        results += [{"rig": k + 1, "seed": seed + k, **r} for r in rows]
    return results


def synthetic_tracks(rng: np.random.Generator, cameras: list, target: np.ndarray, frames: int, noise_px: float,
                     outliers: float, miss: float = 0.1) -> tuple[list[dict], np.ndarray]:
    """Per view {instant: (21, 2) pixels} of one moving hand's landmark points, and that hand's
    ``core.calibration.hands.model_bone_lengths`` (metres; the mean hand's are the command's default)."""
    import torch
    from core.calibration.hands import model_bone_lengths
    from core.hand_model import HandLayer, load_hand_model
    from core.hand_model.landmark_points import LandmarkPoints
    from training.synth.motion import DEPTH, MotionScripts
    from training.synth.scene import SceneSampler
    layers = {s: HandLayer(load_hand_model("open", s), torch.float64) for s in ("right", "left")}
    motion = MotionScripts(SceneSampler("heldout", int(rng.integers(1 << 30)), 224), layers)
    hand = motion.hands(rng, 0, frames)[int(rng.integers(2))]
    layer, landmarks = layers[hand.side], LandmarkPoints(hand.side).double()
    with torch.no_grad():
        out = layer(torch.from_numpy(hand.betas[None]).expand(frames, -1), torch.from_numpy(hand.pose))
        points = landmarks(out).numpy()
    wrist = hand.wrist + (target - np.array([0.0, 0.0, DEPTH]))
    points = points - out.keypoints[:, :1].numpy() + wrist[:, None]                     # (F, 21, 3) view 0 frame
    tracks = []
    for camera in cameras:
        width, height = camera.image_size
        pixels = camera.project(points)                                                  # (F, 21, 2)
        depth = camera.to_view(points)[..., 2]
        inside = (depth > 0.1).all(1) & (pixels >= 0).all((1, 2)) & (pixels[..., 0] < width).all(1) \
            & (pixels[..., 1] < height).all(1) & (rng.random(frames) >= miss)
        noisy = pixels + rng.normal(0, noise_px, pixels.shape)
        wrong = rng.random(pixels.shape[:2]) < outliers
        angle = rng.uniform(0, 2 * np.pi, pixels.shape[:2])
        noisy += wrong[..., None] * rng.uniform(10, 80, pixels.shape[:2])[..., None] \
            * np.stack([np.cos(angle), np.sin(angle)], -1)
        tracks.append({f: noisy[f] for f in np.flatnonzero(inside)})
    return tracks, model_bone_lengths(hand.betas)


def hand_rigs(rigs: int, views: int, seed: int, frames: int, noise_px: float, outliers: float,
              size: tuple) -> list[dict]:
    from core.calibration.hands import calibrate_from_hands
    from training.synth.board_clips import random_rig
    results = []
    for k in range(rigs):
        rng = np.random.default_rng(seed + k)
        cameras, target = random_rig(rng, views, size)
        tracks, bones = synthetic_tracks(rng, cameras, target, frames, noise_px, outliers)
        intrinsics = [(c.K, None, c.image_size) for c in cameras]
        names = [f"view{v + 1}" for v in range(views)]
        for scale_from, lengths in (("mean hand", None), ("true hand", bones)):
            rig = calibrate_from_hands(tracks, intrinsics, names, bone_lengths=lengths)
            rows = compare(cameras, rig.cameras)
            results += [{"rig": k + 1, "seed": seed + k, "scale_from": scale_from,
                         "frames_shared": rig.shared[r["view"] - 1], "rms_px": float(rig.rms_after[r["view"] - 1]),
                         **r} for r in rows]
    return results


def hand_clips(folder: str, stride: int) -> list[dict]:
    from core.cli import main as handcap
    results = []
    for name in sorted(n for n in os.listdir(folder) if n.startswith("clip_")):
        clip = os.path.join(folder, name)
        videos = sorted(n for n in os.listdir(clip) if n.startswith("view") and n.endswith(".mp4"))
        offsets = np.load(os.path.join(clip, "truth.npz"))["frame_offset"]
        args = ["calibrate", "--hands", *[os.path.join(clip, v) for v in videos], "--intrinsics",
                os.path.join(clip, "cameras.json"), "--stride", str(stride), "--offsets", *map(str, offsets),
                "-o", os.path.join(clip, "calibrated.json")]
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            code = handcap(args)
        print(printed.getvalue().rstrip())
        if code != 0:
            results.append({"clip": name, "failed": code})
            continue
        rows = compare(load_cameras(os.path.join(clip, "cameras.json")),
                       load_cameras(os.path.join(clip, "calibrated.json")))
        results += [{"clip": name, **r} for r in rows]
    return results


def summary(results: list[dict]) -> str:
    moving = [r for r in results if r.get("view", 1) > 1 and "failed" not in r]
    failed = [r for r in results if "failed" in r]
    lines = []
    groups = sorted({r.get("scale_from", "") for r in moving})
    for group in groups:
        rows = [r for r in moving if r.get("scale_from", "") == group]
        for key, unit in (("rotation_deg", "deg"), ("position_mm", "mm"), ("position_pct_baseline", "% of baseline")):
            values = np.array([r[key] for r in rows])
            lines.append(f"{(group + ': ') if group else ''}{key}: mean {values.mean():.3f}, max {values.max():.3f} "
                         f"{unit} over {len(values)} cameras")
    focal = np.array([r["focal_pct"] for r in results if "focal_pct" in r])
    if focal.size:
        lines.append(f"focal_pct: mean {focal.mean():.3f}, max {focal.max():.3f} % over {focal.size} cameras")
    if failed:
        lines.append(f"failed rigs: {[r['rig'] for r in failed]}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.calibration_eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["board", "hands", "clips"])
    parser.add_argument("folder", nargs="?", help="clips: the folder of clip_NNN/ folders")
    parser.add_argument("--stride", type=int, default=2, help="clips: every n-th frame (default: %(default)s)")
    parser.add_argument("--rigs", type=int, default=5)
    parser.add_argument("--views", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frames", type=int, default=None, help="default: 40 (board), 120 (hands)")
    parser.add_argument("--size", type=int, nargs=2, default=[960, 720], metavar=("W", "H"))
    parser.add_argument("--noise-px", type=float, default=1.5, help="hands: landmark noise (default: %(default)s)")
    parser.add_argument("--outliers", type=float, default=0.05, help="hands: share of outliers (default: %(default)s)")
    parser.add_argument("--out", default=None, help="board: folder for the clips (default: a temporary folder)")
    parser.add_argument("--json", default=None, help="write every row to this file")
    args = parser.parse_args(argv)
    if args.mode == "board":
        with tempfile.TemporaryDirectory() as tmp:
            results = board_rigs(args.rigs, args.views, args.seed, args.frames or 40, args.out or tmp, tuple(args.size))
    elif args.mode == "clips":
        if not args.folder:
            parser.error("clips needs the folder of clip_NNN/ folders")
        results = hand_clips(args.folder, args.stride)
    else:
        results = hand_rigs(args.rigs, args.views, args.seed, args.frames or 120, args.noise_px, args.outliers,
                            tuple(args.size))
    for r in results:
        print("  " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items()))
    print(summary(results))
    if args.json:
        write_bytes(args.json, (json.dumps(results, indent=1) + "\n").encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
