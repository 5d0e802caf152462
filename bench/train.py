"""Training throughput: ``training.train``'s own loop for a few steps, images/s, on the CPU (and the GPU).

Each config (configs/hamr_fast.toml, configs/baseline.toml) is trained from scratch in a
temporary folder with its own data settings (synthetic renders, its DataLoader workers, batch
size) and no validation, logging every ``--train-steps`` steps (at least 20 on a GPU); the
trainer's ``images_per_s`` of each logging window is one run: the first window (worker start-up,
first renders) is the warm-up, the next ``--repeat`` windows are measured.
"""

from __future__ import annotations

import contextlib
import csv
import os
import sys
import tempfile

from .common import REPO, Options, Row, stat

CONFIGS = ("hamr_fast", "baseline")
GPU_STEPS_PER_RUN = 20     # at least, on a GPU (a step there takes milliseconds)


def throughput(config: str, device: str, steps_per_run: int, repeat: int) -> dict:
    """images/s stat of ``repeat`` logging windows of ``steps_per_run`` steps after one warm-up window."""
    from training.config import load_config
    from training.train import train

    with tempfile.TemporaryDirectory() as tmp:
        overrides = [f'run.out="{tmp}"', f'run.device="{device}"',
                     f"optim.steps={steps_per_run * (1 + repeat)}", f"run.log_every={steps_per_run}",
                     "data.val_count=0", f"run.checkpoint_every={10**9}"]
        cfg = load_config(os.path.join(REPO, "configs", f"{config}.toml"), overrides)
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            train(cfg, restart=True)
        with open(os.path.join(tmp, "metrics.csv"), newline="") as f:
            windows = [float(r["images_per_s"]) for r in csv.DictReader(f) if r.get("images_per_s")]
    return {"batch_size": cfg.optim.batch_size, "input_size": cfg.network.input_size, "backbone": cfg.network.backbone,
            "workers": cfg.data.workers, "steps_per_run": steps_per_run, "images_per_s": stat(windows[1:], "images/s"),
            "warmup_images_per_s": windows[0]}


def run(options: Options) -> dict:
    import torch
    steps, repeat = options.train_steps, options.repeat
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    result = {"devices": {}}
    for device in devices:
        result["devices"][device] = {}
        per_run = steps if device == "cpu" or options.quick else max(steps, GPU_STEPS_PER_RUN)
        for config in CONFIGS:
            try:
                result["devices"][device][config] = throughput(config, device, per_run, repeat)
            except Exception as e:                  # one config failing does not end the section
                print(f"bench train: {config} on {device}: {e}", file=sys.stderr)
                result["devices"][device][config] = {"error": str(e)}
    if not torch.cuda.is_available():
        result["devices"]["cuda"] = {"skipped": "no CUDA GPU"}
    return result


def rows(result: dict) -> list:
    out = []
    for device, configs in result["devices"].items():
        if "skipped" in configs:
            out.append(Row("train", f"training on {device.upper()}", f"({configs['skipped']})"))
            continue
        for config, r in configs.items():
            if "error" in r:
                out.append(Row("train", f"{config} on {device.upper()}", f"(failed: {r['error'][:80]})"))
                continue
            out.append(Row("train", f"{config} on {device.upper()} ({r['backbone']}, {r['input_size']} px, batch "
                           f"{r['batch_size']}, {r['workers']} data workers, {r['steps_per_run']} steps per run)",
                           r["images_per_s"]))
    return out
