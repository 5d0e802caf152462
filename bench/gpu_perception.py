"""``python -m bench.gpu_perception``: handcap's perception networks on a CUDA GPU, fp32 and bf16/fp16.

One short script for a GPU machine (needs only numpy, torch >= 2.11 and safetensors): the
hand-landmark network's crops/s at batch 1, 32 and 256 in float32 and in bf16 (or fp16) autocast
(channels-last), the palm detector's images/s at batch 1 and 64, and how far the low precision
moves the outputs from float32 (landmarks in 224 px crop pixels, world landmarks in mm, presence). Inputs
are random images, plus the .jpg/.png crops in ``--images DIR`` if given (squashed to 224 px).
Prints one line per measurement and, with ``--json PATH``, writes them all.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys

import numpy as np

if __package__ in (None, ""):                      # run as a file: make the repo importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.perception import AUTOCAST, BATCHES, VARIANTS, landmark_throughput  # noqa: E402


def _images(folder: str, count: int = 64):
    """(N, 3, 224, 224) float32 in [0, 1]: random images and the crops in ``folder``."""
    import torch
    images = [torch.rand(count, 3, 224, 224, generator=torch.Generator().manual_seed(0))]
    if folder:
        from PIL import Image
        for path in sorted(glob.glob(os.path.join(folder, "*.jpg")) + glob.glob(os.path.join(folder, "*.png"))):
            rgb = np.asarray(Image.open(path).convert("RGB").resize((224, 224), Image.BILINEAR), np.float32) / 255
            images.append(torch.from_numpy(rgb).permute(2, 0, 1)[None])
    return torch.cat(images)


def low_precision_differences(variant: str, images, dtype, device: str = "cuda") -> dict:
    """Largest and mean |autocast(dtype) - fp32| of the outputs over ``images`` (landmarks px,
    world mm, presence)."""
    import torch

    from core.perception import load_hand_landmarks
    net = load_hand_landmarks(variant, device)
    x = images.to(device).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        ref = net(x)
        with torch.autocast("cuda", dtype=dtype):
            low = net(x)
    diff = {name: (getattr(low, name).float() - getattr(ref, name)).abs() for name in ref._fields}
    real = slice(64, None)                       # the crops from --images (after the 64 random ones)
    out = {"landmarks_px_max": float(diff["landmarks"][..., :2].max()),
           "landmarks_px_mean": float(diff["landmarks"][..., :2].mean()),
           "world_mm_max": float(diff["world"].max() * 1000), "presence_max": float(diff["presence"].max())}
    if len(images) > 64:
        out["real_landmarks_px_mean"] = float(diff["landmarks"][real, :, :2].mean())
        out["real_landmarks_px_max"] = float(diff["landmarks"][real, :, :2].max())
        out["real_presence_fp32"] = [round(float(p), 4) for p in ref.presence[real]]
    return out


def palm_throughput(variant: str, batch: int, precision: str, repeat: int = 3, device: str = "cuda") -> float:
    """Median images/s of the palm detector at ``batch`` on ``device``."""
    import time

    import torch

    from core.perception import load_palm_detector
    net = load_palm_detector(variant, device)
    x = torch.rand(batch, 3, 192, 192, device=device).contiguous(memory_format=torch.channels_last)
    calls = max(5, 512 // batch)
    seconds = []
    dtype = AUTOCAST[precision]
    with torch.inference_mode(), torch.autocast("cuda", dtype=getattr(torch, dtype or "bfloat16"), enabled=bool(dtype)):
        for i in range(repeat + 1):
            torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(calls):
                net(x)
            torch.cuda.synchronize()
            if i:
                seconds.append(time.perf_counter() - start)
    return float(np.median([batch * calls / s for s in seconds]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_perception", description=__doc__.split("\n\n")[1])
    parser.add_argument("--images", default="", help="folder of real hand crops for the precision differences")
    parser.add_argument("--precisions", default="fp32,bf16,fp16", help="comma-separated, of fp32, bf16, fp16 (autocast)")
    parser.add_argument("--batches", default=",".join(map(str, BATCHES)), help="landmark batch sizes")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per measurement (median)")
    parser.add_argument("--json", default="", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    import torch
    if not torch.cuda.is_available():
        print("no CUDA GPU: nothing to measure", file=sys.stderr)
        return 1
    torch.backends.cudnn.benchmark = True
    result = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "variants": {}}
    print(f"{result['gpu']}, torch {torch.__version__}", flush=True)
    images = _images(args.images)
    for variant in VARIANTS:
        entry = {"landmarks_crops_per_s": {}, "palm_images_per_s": {}}
        precisions = [p for p in args.precisions.split(",") if p]
        for precision in precisions:
            for batch in [int(b) for b in args.batches.split(",")]:
                value = landmark_throughput(variant, batch, args.repeat, "cuda", precision, min_crops=4096)["median"]
                entry["landmarks_crops_per_s"][f"{precision}_b{batch}"] = value
                print(f"hand landmarks {variant} {precision} batch {batch}: {value:,.0f} crops/s", flush=True)
            for batch in (1, 64):
                value = palm_throughput(variant, batch, precision, args.repeat)
                entry["palm_images_per_s"][f"{precision}_b{batch}"] = value
                print(f"palm detection {variant} {precision} batch {batch}: {value:,.0f} images/s", flush=True)
        for precision in precisions:
            if precision != "fp32":
                diff = low_precision_differences(variant, images, getattr(torch, AUTOCAST[precision]))
                entry[f"{precision}_vs_fp32"] = diff
                print(f"hand landmarks {variant} {precision} vs fp32: {diff}", flush=True)
        result["variants"][variant] = entry
    if args.json:
        with open(args.json + ".tmp", "w") as f:
            json.dump(result, f, indent=1)
        os.replace(args.json + ".tmp", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
