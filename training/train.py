"""Train a HAMR or baseline network.

    python -m training.train --config configs/hamr_fast.toml [--set optim.steps=200 ...]
    torchrun --nproc_per_node=N -m training.train --config ...      # DistributedDataParallel

One process per GPU (or several CPU processes with gloo). Training resumes by itself from
``<run.out>/checkpoint.pt`` when it exists (``--restart`` ignores it). Rank 0 shows a progress
bar, appends metrics to ``<out>/metrics.csv`` (and TensorBoard when installed), draws
``<out>/curves.png`` and writes the final weights to ``<out>/weights.safetensors``.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from core.networks import build_network
from core.networks.weights import save_weights

from .config import TrainConfig, load_config
from .data import make_train_stream, make_val_samples
from .evaluate import evaluate_crops
from .plots import plot_training_curves
from .synth.dataset import WORKER_CONTEXT


# ------------------------------------------------------------------------------ processes

def setup_distributed(device_setting: str):
    """(rank, world_size, device) from torchrun's environment; a plain run is rank 0 of 1."""
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    use_cuda = torch.cuda.is_available() and device_setting in ("auto", "cuda")
    if device_setting == "cuda" and not torch.cuda.is_available():
        raise SystemExit("train: --device cuda asked for, but no CUDA GPU is available")
    if use_cuda:
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if world > 1:
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return rank, world, device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _seed_worker(_worker_id: int) -> None:
    """DataLoader workers: numpy and random follow torch's per-worker seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


# ------------------------------------------------------------------------------ schedule

def learning_rate(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to 2% of the peak."""
    o = cfg.optim
    if step < o.warmup_steps:
        return o.lr * (step + 1) / o.warmup_steps
    progress = (step - o.warmup_steps) / max(1, o.steps - o.warmup_steps)
    return o.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


# ----------------------------------------------------------------------------- checkpoint

def save_checkpoint(path: str, model, optimizer, step: int, cfg: TrainConfig) -> None:
    """Atomic: written to a temporary file, then renamed over the old checkpoint."""
    tmp = path + ".tmp"
    torch.save({"model": _unwrap(model).state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                "config": cfg.to_dict(), "rng": torch.get_rng_state()}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str, model, optimizer) -> int:
    state = torch.load(path, map_location="cpu", weights_only=False)
    _unwrap(model).load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"])
    return int(state["step"])


def _unwrap(model):
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


# ----------------------------------------------------------------------------------- loop

def build_loss(cfg: TrainConfig, device):
    from core.hand_model import PosePrior, load_hand_model

    from .losses import BaselineLoss, HamrLoss
    if cfg.network.arch == "baseline":
        return BaselineLoss(camera_weight=cfg.loss.get("camera", 1.0))
    hand = load_hand_model(cfg.network.hand_model, "right")
    return HamrLoss(cfg.loss, PosePrior(hand), faces=torch.as_tensor(hand.faces, dtype=torch.long)).to(device)


def to_device(batch: dict, device) -> dict:
    """Tensors of a batch (and of dicts inside it, e.g. cached trunk outputs) moved to ``device``."""
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else to_device(v, device) if isinstance(v, dict)
            else v for k, v in batch.items()}


class MetricsLog:
    """Rank 0's CSV (and TensorBoard, when installed) of named scalars per step."""

    def __init__(self, out_dir: str):
        self.path = os.path.join(out_dir, "metrics.csv")
        self.rows = []
        if os.path.exists(self.path):
            with open(self.path, newline="") as f:
                self.rows = list(csv.DictReader(f))
        try:
            from torch.utils.tensorboard import SummaryWriter
            self.tensorboard = SummaryWriter(os.path.join(out_dir, "tensorboard"))
        except ImportError:
            self.tensorboard = None

    def log(self, step: int, values: dict) -> None:
        row = {"step": step, **{k: f"{float(v):.6g}" for k, v in values.items()}}
        self.rows = [r for r in self.rows if int(r["step"]) != step or set(r) - set(row)]  # no duplicates on resume
        self.rows.append(row)
        keys = list(dict.fromkeys(k for r in self.rows for k in r))
        tmp = self.path + ".tmp"
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.rows)
        os.replace(tmp, self.path)
        if self.tensorboard is not None:
            for k, v in values.items():
                self.tensorboard.add_scalar(k, float(v), step)


def train(cfg: TrainConfig, restart: bool = False) -> str:
    """Run (or resume) training; returns the path of the final weights (rank 0)."""
    rank, world, device = setup_distributed(cfg.run.device)
    main_process = rank == 0
    if cfg.run.threads:
        torch.set_num_threads(cfg.run.threads)
    seed_everything(cfg.run.seed + rank)
    os.makedirs(cfg.run.out, exist_ok=True)

    model = build_network(cfg.network).to(device).to(memory_format=torch.channels_last)  # faster on GPU and CPU
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
    checkpoint = os.path.join(cfg.run.out, "checkpoint.pt")
    step = 0
    if os.path.exists(checkpoint) and not restart:
        step = load_checkpoint(checkpoint, model, optimizer)
        if main_process:
            print(f"train: resumed from {checkpoint} at step {step}", flush=True)
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    loss_fn = build_loss(cfg, device)
    if hasattr(_unwrap(model), "training_vertices"):   # the mesh is only needed by the silhouette loss
        _unwrap(model).training_vertices = cfg.loss.get("silhouette", 0.0) > 0

    stream = make_train_stream(cfg, rank=rank, world_size=world, start_step=step)
    loader = DataLoader(stream, batch_size=cfg.optim.batch_size, num_workers=cfg.data.workers,
                        worker_init_fn=_seed_worker, pin_memory=device.type == "cuda",
                        persistent_workers=cfg.data.workers > 0,
                        multiprocessing_context=WORKER_CONTEXT if cfg.data.workers > 0 else None)
    val_samples = make_val_samples(cfg) if main_process and cfg.data.val_count > 0 else None
    log = MetricsLog(cfg.run.out) if main_process else None
    amp = device.type == "cuda" and cfg.run.amp

    progress = None
    if main_process:
        from tqdm import tqdm
        progress = tqdm(total=cfg.optim.steps, initial=step, desc="train", dynamic_ncols=True, file=sys.stdout)
    model.train()
    window_start, window_images, sums = time.perf_counter(), 0, {}
    for batch in loader:
        if step >= cfg.optim.steps:
            break
        batch = to_device(batch, device)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, cfg)
        if "trunk" in batch:       # a feature cache (training.cache_features): the frozen trunk's outputs
            inputs, count = batch["trunk"], len(batch["joints_3d"])
        else:
            inputs = batch["image"].contiguous(memory_format=torch.channels_last)
            count = inputs.shape[0]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            prediction = model(inputs)
        loss, terms = loss_fn(_float32(prediction), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        optimizer.step()
        step += 1
        window_images += count * world
        for k, v in {"loss": loss.detach(), **terms}.items():
            sums[k] = sums.get(k, 0.0) + float(v)
        if main_process:
            progress.update(1)
            progress.set_postfix(loss=f"{loss.item():.4f}")
        if main_process and step % cfg.run.log_every == 0:
            elapsed = time.perf_counter() - window_start
            count = cfg.run.log_every
            log.log(step, {**{f"train/{k}": v / count for k, v in sums.items()},
                           "lr": learning_rate(step - 1, cfg), "grad_norm": grad_norm,
                           "images_per_s": window_images / elapsed})
            window_start, window_images, sums = time.perf_counter(), 0, {}
        if main_process and val_samples is not None and (step % cfg.run.val_every == 0 or step == cfg.optim.steps):
            _unwrap(model).eval()
            scores = evaluate_crops(_unwrap(model), val_samples, cfg.optim.batch_size, device, amp, desc="validate")
            log.log(step, {f"val/{k}": v for k, v in scores.items() if isinstance(v, (int, float))})
            model.train()
        if main_process and (step % cfg.run.checkpoint_every == 0 or step == cfg.optim.steps):
            save_checkpoint(checkpoint, model, optimizer, step, cfg)
            plot_training_curves(log.path, os.path.join(cfg.run.out, "curves.png"))
    weights_path = os.path.join(cfg.run.out, "weights.safetensors")
    if main_process:
        progress.close()
        save_weights(_unwrap(model), cfg.network, weights_path,
                     extra_metadata={"steps": str(step), "train_data": ",".join(cfg.data.train)})
        print(f"train: {step} steps done; weights {weights_path}; curves {os.path.join(cfg.run.out, 'curves.png')}",
              flush=True)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return weights_path


def _float32(prediction):
    """Losses in float32 even when the network ran under bf16 autocast."""
    if torch.is_tensor(prediction):
        return prediction.float() if prediction.is_floating_point() else prediction
    if isinstance(prediction, dict):
        return {k: _float32(v) for k, v in prediction.items()}
    if isinstance(prediction, (list, tuple)):
        return type(prediction)(_float32(v) for v in prediction)
    return prediction


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Train a HAMR or baseline hand network (see configs/).")
    parser.add_argument("--config", required=True, help="TOML file with [network], [data], [loss], [optim], [run]")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.NAME=VALUE",
                        help="override one setting with a TOML value, e.g. --set optim.steps=200 --set run.out='\"x\"'")
    parser.add_argument("--restart", action="store_true", help="ignore an existing checkpoint in run.out")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config, args.set)
    except ValueError as e:
        parser.error(str(e))
    train(cfg, restart=args.restart)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
