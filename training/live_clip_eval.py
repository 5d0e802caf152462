"""Live against ``estimate --smoothing 0`` on the same frames, scored against 3D truth.

The photos of a FreiHAND-style folder with 3D truth (default ``../shared/real3d/ge_dev``) are written
into one clip, each photo held for ``--hold`` frames (MJPG, near lossless), with one camera: the
median of the photos' intrinsics, passed to both commands with ``--K``. Then
  - ``handcap live CLIP`` (its records, read as the add-on reads them: ``blender_addon.live_stream``;
    not ``--as-camera``, so every frame is estimated), and
  - ``handcap estimate CLIP --smoothing 0`` (the capture file's per-frame results)
run on it, and each frame's hand (the one whose keypoints' box overlaps the truth's projected box
the most) is scored as ``training.engine_eval`` scores photos: PA-MPJPE (mm, after Procrustes
alignment) and root-relative MPJPE (mm, wrist at the origin). The frames scored are those where both
found the hand; each one's own count of found frames is reported too. The issue's bar (30): live
within 0.5 mm PA of estimate.

    python -m training.live_clip_eval [--data DIR] [--hold 3] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import cv2
import numpy as np

from training import metrics
from training.engine_eval import MIN_MATCH_IOU, keypoint_box

DEFAULT_DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "real3d",
                            "ge_dev")
FPS = 30.0


def write_clip(data: str, path: str, hold: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The folder's photos into ``path`` (MJPG .avi), each ``hold`` frames. Returns the clip's (3, 3) K
    (the photos' median), and per frame the truth: (F, 21, 3) metres and (F, 21, 2) pixels in the
    clip's camera (the photo's own 3D truth projected with the clip's K)."""
    from training.datasets import FreiHAND
    photos = FreiHAND(data, split="evaluation")
    K = np.median(photos.K, axis=0).astype(np.float64)
    def photo(i: int) -> np.ndarray:          # BGR, as the file is
        return cv2.imread(os.path.join(data, "evaluation", "rgb", f"{i:08d}.jpg"), cv2.IMREAD_COLOR)
    height, width = photo(0).shape[:2]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), FPS, (width, height))
    truth_3d, truth_2d = [], []
    try:
        for i in range(len(photos)):
            bgr = photo(i)
            if bgr.shape[:2] != (height, width):
                raise ValueError(f"{data}: photo {i} is {bgr.shape[1]} x {bgr.shape[0]}, the first {width} x {height}")
            xyz = np.asarray(photos.xyz[i % photos.num_annotations], np.float64)
            uv = xyz @ K.T
            for _ in range(hold):
                writer.write(bgr)
                truth_3d.append(xyz)
                truth_2d.append(uv[:, :2] / uv[:, 2:])
    finally:
        writer.release()
    return K, np.stack(truth_3d), np.stack(truth_2d)


def pick(hands: list, true_2d: np.ndarray):
    """(21, 3) joints of the hand (dicts with joints_3d, keypoints_2d) whose keypoints' box overlaps the
    truth's box the most (at least MIN_MATCH_IOU), or None."""
    from core.engine.detect import box_iou
    target = keypoint_box(true_2d)
    scored = [(box_iou(keypoint_box(np.asarray(h["keypoints_2d"])), target), i) for i, h in enumerate(hands)]
    best = max(scored, default=(0.0, -1))
    return np.asarray(hands[best[1]]["joints_3d"], np.float64) if best[0] >= MIN_MATCH_IOU else None


def live_hands(clip: str, K_file: str, extra: list = ()) -> tuple[dict, dict]:
    """``handcap live CLIP --K K_file``: {frame: [hand dicts]} and its end record (fps, stages)."""
    from blender_addon.live_stream import start_live
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    stream = start_live(sys.executable, clip, "", ["--device", "cpu", "--K", K_file, *extra],
                        env=dict(os.environ, PYTHONPATH=root))
    records = stream.wait(timeout=3600)
    if stream.error or stream.end is None:
        raise RuntimeError(stream.error or "the live engine ended without its end record")
    return {int(r["frame"]): r.get("hands", []) for r in records if r["type"] == "frame"}, stream.end


def estimate_hands(clip: str, K_file: str, out: str) -> dict:
    """``handcap estimate CLIP --K K_file --smoothing 0``: {frame: [hand dicts]} from the capture file."""
    from blender_addon.capture_format import load_capture
    from core.engine.pipeline import EngineOptions
    from core.engine.progress import Progress
    from core.engine.run import Estimator, VideoOptions
    estimator = Estimator(EngineOptions(device="cpu"), VideoOptions(smoothing=0.0), out, K_file=K_file, progress=Progress())
    try:
        capture = estimator.estimate_file(clip, os.path.join(out, "clip.npz"))
    finally:
        estimator.close()
    frames: dict = {}
    for track in (load_capture(capture).tracks if capture else []):
        interpolated = track.interpolated if track.interpolated is not None else np.zeros(track.num_frames, bool)
        for row, frame in enumerate(track.frame_index):
            if track.valid[row] and not interpolated[row]:
                frames.setdefault(int(frame), []).append({"joints_3d": track.joints_3d[row],
                                                          "keypoints_2d": track.keypoints_2d[row]})
    return frames


def score(found: dict, truth_3d: np.ndarray, frames: list) -> dict:
    """PA-MPJPE and root-relative MPJPE (mm) over ``frames``."""
    pred = np.stack([found[f] for f in frames])
    true = truth_3d[frames]
    rel = 1000.0 * np.linalg.norm((pred - pred[:, :1]) - (true - true[:, :1]), axis=-1)
    return {"frames": len(frames), "pa_mpjpe_mm": float(metrics.pa_errors_mm(pred, true).mean()),
            "rr_mpjpe_mm": float(rel.mean())}


def evaluate(data: str = DEFAULT_DATA, hold: int = 3, extra: list = ()) -> dict:
    """Both commands on the clip of ``data``'s photos; see the module docstring."""
    with tempfile.TemporaryDirectory(prefix="handcap_live_clip_") as tmp:
        clip, K_file = os.path.join(tmp, "photos.avi"), os.path.join(tmp, "K.json")
        K, truth_3d, truth_2d = write_clip(data, clip, hold)
        with open(K_file, "w") as f:
            json.dump(K.tolist(), f)
        live, end = live_hands(clip, K_file, extra)
        batch = estimate_hands(clip, K_file, os.path.join(tmp, "out"))
    count = len(truth_3d)
    picked = {name: {f: p for f in range(count) if (p := pick(hands.get(f, []), truth_2d[f])) is not None}
              for name, hands in (("live", live), ("estimate", batch))}
    both = sorted(set(picked["live"]) & set(picked["estimate"]))
    result = {"data": os.path.abspath(data), "frames": count, "hold": hold, "live_fps": end.get("fps")}
    for name, found in picked.items():
        result[name] = {"found": len(found), **score(found, truth_3d, both)}
    result["pa_difference_mm"] = result["live"]["pa_mpjpe_mm"] - result["estimate"]["pa_mpjpe_mm"]
    result["rr_difference_mm"] = result["live"]["rr_mpjpe_mm"] - result["estimate"]["rr_mpjpe_mm"]
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.live_clip_eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=DEFAULT_DATA, help="FreiHAND-style folder with 3D truth (default: ge_dev)")
    parser.add_argument("--hold", type=int, default=3, help="frames each photo is held for (default 3)")
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args(argv)
    if args.hold < 1:
        parser.error("--hold must be at least 1")
    if not os.path.isdir(args.data):
        parser.error(f"{args.data}: no such folder")
    result = evaluate(args.data, args.hold)
    for name in ("live", "estimate"):
        r = result[name]
        print(f"{name:>8}: found {r['found']} of {result['frames']} frames; on the {r['frames']} both found: "
              f"PA-MPJPE {r['pa_mpjpe_mm']:.3f} mm, root-relative {r['rr_mpjpe_mm']:.3f} mm")
    print(f"live - estimate: PA {result['pa_difference_mm']:+.3f} mm, root-relative {result['rr_difference_mm']:+.3f} mm "
          f"(bar: within 0.5 mm PA); live ran at {result['live_fps']:.1f} frames/s")
    if args.json:
        from training.evaluate import write_atomic
        write_atomic(args.json, (json.dumps(result, indent=1) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
