"""Benchmark the inference engine on this machine (not a test): a 640x480 video, stage by stage.

    python bench/bench_engine.py [--weights fast|FILE] [--frames 96] [--repeat 3] [--json OUT.json]

Makes a 640x480 test video (a rendered hand moving over a background, written with OpenCV), then
runs ``handcap estimate`` on it ``--repeat`` times after a warm-up and prints the median (and
min-max) milliseconds per frame of each stage (decode, detect, crop, network, refine, smooth,
write) and the end-to-end frames/s; beside it, MediaPipe's hand tracker alone on the same frames
(the reference most Blender capture add-ons use). On a GPU it also prints the network's crops/s
at batch 1, 32 and 256 (bf16). Target (ARCHITECTURE.md): CPU video >= 30 frames/s with the fast model.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import cv2
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

STAGES = ("decode", "detect", "crop", "network", "refine", "smooth", "write")


def make_video(path: str, frames: int, fps: float = 30.0) -> None:
    """A hand (the bundled demo render, scaled to 280 px) gliding over a grey gradient, 640x480."""
    hand = cv2.resize(cv2.imread(os.path.join(REPO, "core", "assets", "demo_hand.jpg")), (280, 280))
    background = np.tile(np.linspace(90, 170, 640, dtype=np.uint8)[None, :, None], (480, 1, 3))
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (640, 480))
    for i in range(frames):
        frame = background.copy()
        x = int(60 + 250 * (0.5 - 0.5 * np.cos(2 * np.pi * i / frames)))
        y = int(90 + 40 * np.sin(2 * np.pi * i / frames))
        frame[y:y + 280, x:x + 280] = hand
        writer.write(frame)
    writer.release()


def engine_run(video: str, weights: str, out: str, threads: int) -> tuple[dict, float, int]:
    """One ``handcap estimate`` run: (seconds per stage, total seconds, frames)."""
    from core.engine.pipeline import EngineOptions
    from core.engine.run import Estimator, Progress, VideoOptions

    estimator = Estimator(EngineOptions(weights=weights, threads=threads), VideoOptions(), out,
                          progress=Progress("text"))
    try:
        start = time.perf_counter()
        with open(os.devnull, "w") as devnull:
            stderr, sys.stderr = sys.stderr, devnull
            try:
                outputs, failed = estimator.run([video])
            finally:
                sys.stderr = stderr
        total = time.perf_counter() - start
        from blender_addon.capture_format import load_capture
        frames = load_capture(outputs[0]).tracks[0].num_frames if outputs and not failed else 0
        return dict(estimator.engine.times.seconds), total, frames
    finally:
        estimator.close()


def mediapipe_run(video: str) -> tuple[float, int]:
    """MediaPipe Hands (tracking mode, full model) alone on every frame: (seconds, frames)."""
    from core.engine.detect import HandDetector

    capture, frames = cv2.VideoCapture(video), []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    with HandDetector(max_hands=2, video=True) as detector:
        start = time.perf_counter()
        for rgb in frames:
            detector.detect(rgb)
        return time.perf_counter() - start, len(frames)


def gpu_throughput(weights: str) -> dict:
    """Crops/s of the network at batch 1, 32, 256 in bf16, and the bare backbone as the ceiling."""
    import torch

    from core.engine.network import HandNetwork
    if not torch.cuda.is_available():
        return {}
    network = HandNetwork(weights, torch.device("cuda"))
    size, rows = network.input_size, {}
    for batch in (1, 32, 256):
        crops = np.random.randint(0, 255, (batch, size, size, 3), np.uint8)
        for _ in range(3):
            network.predict(crops, batch_size=batch)
        torch.cuda.synchronize()
        start, n = time.perf_counter(), 20
        for _ in range(n):
            network.predict(crops, batch_size=batch)
        torch.cuda.synchronize()
        rows[batch] = batch * n / (time.perf_counter() - start)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="fast", help="fast | accurate | a .safetensors file")
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    os.environ.setdefault("GLOG_minloglevel", "2")
    with tempfile.TemporaryDirectory() as tmp:
        video = os.path.join(tmp, "bench_640x480.mp4")
        make_video(video, args.frames)
        engine_run(video, args.weights, os.path.join(tmp, "warmup"), args.threads)
        runs = [engine_run(video, args.weights, os.path.join(tmp, f"run{i}"), args.threads) for i in range(args.repeat)]
        mediapipe = [mediapipe_run(video) for _ in range(args.repeat)]
    frames = runs[0][2] or args.frames
    rows = []
    for stage in STAGES:
        values = [1000 * r[0].get(stage, 0.0) / frames for r in runs]
        rows.append((stage, statistics.median(values), min(values), max(values)))
    fps = [frames / r[1] for r in runs]
    mp_fps = [n / s for s, n in mediapipe]
    print(f"handcap engine, {args.weights} weights, 640x480 video, {frames} frames, median of {args.repeat} runs")
    print(f"{'stage':<10}{'ms/frame':>10}{'min-max':>16}")
    for stage, median, low, high in rows:
        print(f"{stage:<10}{median:>10.2f}{f'{low:.2f}-{high:.2f}':>16}")
    print(f"{'end-to-end':<10}{statistics.median(fps):>10.1f} frames/s ({min(fps):.1f}-{max(fps):.1f})")
    print(f"{'mediapipe':<10}{statistics.median(mp_fps):>10.1f} frames/s ({min(mp_fps):.1f}-{max(mp_fps):.1f})"
          f"   handcap/mediapipe = {statistics.median(fps) / statistics.median(mp_fps):.2f}")
    from core.engine.network import resolve_device, resolve_weights
    gpu = gpu_throughput(resolve_weights(args.weights, resolve_device("auto")))
    for batch, rate in gpu.items():
        print(f"GPU batch {batch:>3}: {rate:,.0f} crops/s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"stages_ms_per_frame": {s: m for s, m, _, _ in rows}, "fps": statistics.median(fps),
                       "mediapipe_fps": statistics.median(mp_fps), "gpu_crops_per_s": gpu, "frames": frames}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
