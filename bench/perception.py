"""handcap's perception networks (core/perception) on the CPU, beside MediaPipe's own runtime.

Rows: the hand-landmark network's crops/s at batch 1, 32 and 256 (full and lite), the palm
detector's ms per 192 px image, and MediaPipe 0.10.21 running the original .tflite models
(XNNPACK, through its InferenceCalculator) on the same inputs, one image at a time as MediaPipe
runs them. torch uses ``CPU_THREADS`` threads and so does MediaPipe's XNNPACK here.
``bench/gpu_perception.py`` measures the same networks on a CUDA GPU (fp32 and bf16).
"""

from __future__ import annotations

import time

import numpy as np

from .common import Options, Row, ms, rate, skipped, stat

BATCHES = (1, 32, 256)
CPU_THREADS = 2
VARIANTS = ("full", "lite")


def _sync(device) -> None:
    import torch
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


AUTOCAST = {"fp32": None, "bf16": "bfloat16", "fp16": "float16"}


def landmark_throughput(variant: str, batch: int, repeat: int = 3, device: str = "cpu", precision: str = "fp32",
                        min_crops: int = 256, chunk: int = 0) -> dict:
    """crops/s stat of ``HandLandmarkNet(variant)`` on random (batch, 3, 224, 224) inputs already on
    ``device``, in ``precision`` (a key of AUTOCAST); each timed run makes at least ``min_crops``
    crops (and at least one call). ``chunk`` > 0 runs the batch in slices of that many crops."""
    import torch

    from core.perception import load_hand_landmarks
    net = load_hand_landmarks(variant, device)
    images = torch.rand(batch, 3, 224, 224, device=device).contiguous(memory_format=torch.channels_last)
    calls = max(1, min_crops // batch)

    @torch.inference_mode()
    def step():
        dtype = AUTOCAST[precision]
        with torch.autocast(torch.device(device).type, dtype=getattr(torch, dtype or "bfloat16"), enabled=bool(dtype)):
            for part in (images.split(chunk) if chunk else (images,)):
                net(part)

    step()
    _sync(device)
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(calls):
            step()
        _sync(device)
        seconds.append(time.perf_counter() - start)
    return rate(batch * calls, seconds, "crops/s")


def palm_latency(variant: str, repeat: int = 3, device: str = "cpu", calls: int = 10) -> dict:
    """ms stat per 192 px image of ``PalmDetector(variant)`` at batch 1 (mean of ``calls`` calls per run)."""
    import torch

    from core.perception import load_palm_detector
    net = load_palm_detector(variant, device)
    image = torch.rand(1, 3, 192, 192, device=device)
    with torch.inference_mode():
        net(image)
        seconds = []
        for _ in range(repeat):
            start = time.perf_counter()
            for _ in range(calls):
                net(image)
            _sync(device)
            seconds.append((time.perf_counter() - start) / calls)
    return ms(seconds)


def mediapipe_latency(relative: str, size: int, num_outputs: int, repeat: int = 3, calls: int = 10,
                      threads: int = CPU_THREADS) -> dict:
    """ms stat per image of the original .tflite run by MediaPipe's InferenceCalculator (XNNPACK,
    ``threads`` threads), one image at a time (8-bit image in, as MediaPipe's graphs feed it)."""
    from core.perception.reference import MediaPipeModel
    model = MediaPipeModel(relative, size, num_outputs, threads)
    images = np.random.default_rng(0).integers(0, 256, (calls, size, size, 3), dtype=np.uint8)
    try:
        model(images[:2])
        seconds = []
        for _ in range(repeat):
            start = time.perf_counter()
            model(images)
            seconds.append((time.perf_counter() - start) / calls)
    finally:
        model.close()
    return ms(seconds)


def run(options: Options) -> dict:
    import importlib.util

    import torch
    torch.set_num_threads(CPU_THREADS)
    has_mediapipe = importlib.util.find_spec("mediapipe") is not None
    repeat = options.repeat
    batches = (1, 8) if options.quick else BATCHES
    result = {"threads": CPU_THREADS, "variants": {}}
    for variant in VARIANTS:
        entry = {"landmarks": {}, "palm_ms": palm_latency(variant, repeat, calls=2 if options.quick else 10)}
        for batch in batches:
            entry["landmarks"][str(batch)] = landmark_throughput(variant, batch, repeat,
                                                                 min_crops=8 if options.quick else 256)
        if has_mediapipe:
            calls = 2 if options.quick else 20
            landmark_ms = mediapipe_latency(f"hand_landmark/hand_landmark_{variant}.tflite", 224, 4, repeat, calls)
            entry["mediapipe_landmarks"] = stat([1000 / v for v in landmark_ms["runs"]], "crops/s")
            entry["mediapipe_palm_ms"] = mediapipe_latency(f"palm_detection/palm_detection_{variant}.tflite",
                                                           192, 2, repeat, calls)
        result["variants"][variant] = entry
    return result


def rows(result: dict) -> list:
    out = []
    threads = result["threads"]
    for variant, entry in result["variants"].items():
        mp = entry.get("mediapipe_landmarks")
        mp_text = f"MediaPipe {mp['median']:.1f} crops/s (one at a time)" if mp else "MediaPipe not installed"
        for batch, value in entry["landmarks"].items():
            out.append(Row("perception", f"hand landmarks {variant}: batch {batch}, CPU {threads} threads", value,
                           reference=mp_text, ratio=value["median"] / mp["median"] if mp else None))
        palm, mp_palm = entry["palm_ms"], entry.get("mediapipe_palm_ms")
        out.append(Row("perception", f"palm detection {variant}: one 192 px image, CPU {threads} threads", palm,
                       reference=f"MediaPipe {mp_palm['median']:.2f} ms" if mp_palm else "MediaPipe not installed",
                       ratio=mp_palm["median"] / palm["median"] if mp_palm else None))
    if not out:
        out.append(skipped("perception", "perception networks", "nothing measured"))
    return out
