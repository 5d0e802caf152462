"""The network alone on the GPU: crops/s at batch 1, 32 and 256 in bf16, against its backbone's ceiling.

``HandNetwork.predict`` as the engine calls it (uint8 crops from host memory, normalisation,
bf16 autocast with channels-last, the hand layer, axis-angle and heatmap keypoints, results back
to the host) is compared with the bare forward pass of the same ResNet trunk on a bf16 batch
already on the GPU: no network can be faster than its backbone, so predict / trunk says how much
of the ceiling the rest of the network and the data handling leave.
"""

from __future__ import annotations

import time

import numpy as np

from .common import MODELS, Options, Row, number, rate, shipped_weights, skipped

BATCHES = (1, 32, 256)
CROPS_PER_RUN = 2048       # each timed run pushes about this many crops (at least 5 calls)


def throughput(weights: str, device: str = "cuda", batches=BATCHES, repeat: int = 3, crops_per_run: int = CROPS_PER_RUN) -> dict:
    """{batch: {"network": crops/s stat, "trunk": crops/s stat, "ratio": network/trunk}} on ``device``
    (bf16 on CUDA, float32 elsewhere: the CPU path is there to test this code)."""
    import torch

    from core.engine.network import HandNetwork

    device = torch.device(device)
    network = HandNetwork(weights, device)
    size, amp, out = network.input_size, device.type == "cuda", {}

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def timed(fn, calls):
        for _ in range(3):                      # warm-up (cuDNN autotuning, allocator)
            fn()
        sync()
        seconds = []
        for _ in range(repeat):
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            sync()
            seconds.append(time.perf_counter() - start)
        return seconds

    for batch in batches:
        calls = max(5, crops_per_run // batch)
        crops = np.random.default_rng(0).integers(0, 256, (batch, size, size, 3), dtype=np.uint8)
        images = torch.randn(batch, 3, size, size, device=device)
        if amp:
            images = images.contiguous(memory_format=torch.channels_last)

        @torch.inference_mode()
        def trunk():
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                network.model.trunk(images)

        full = rate(batch * calls, timed(lambda: network.predict(crops, batch_size=batch), calls), "crops/s")
        bare = rate(batch * calls, timed(trunk, calls), "crops/s")
        out[str(batch)] = {"network": full, "trunk": bare, "ratio": full["median"] / bare["median"]}
    return {"backbone": network.config.backbone, "input_size": size, "dtype": "bf16" if amp else "float32",
            "batches": out}


def run(options: Options) -> dict:
    import torch
    if not torch.cuda.is_available():
        return {"skipped": "no CUDA GPU"}
    result = {"gpu": torch.cuda.get_device_name(0), "models": {}}
    for name in MODELS:
        weights = shipped_weights(name)
        result["models"][name] = (throughput(weights, "cuda", repeat=options.repeat,
                                             crops_per_run=256 if options.quick else CROPS_PER_RUN)
                                  if weights else {"skipped": "no weights"})
    return result


def rows(result: dict) -> list:
    if "skipped" in result:
        return [skipped("gpu", "network alone on the GPU", result["skipped"])]
    out = []
    for name, model in result["models"].items():
        if "skipped" in model:
            out.append(skipped("gpu", f"{name}: network alone on the GPU", model["skipped"]))
            continue
        for batch, r in model["batches"].items():
            out.append(Row("gpu", f"{name}: network, batch {batch}, {model['dtype']}, {model['input_size']} px crops",
                           r["network"], reference=f"bare {model['backbone']} forward {number(r['trunk']['median'])} crops/s",
                           ratio=r["ratio"]))
    return out
