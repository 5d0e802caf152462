"""The trainer end to end on the CPU: a few steps, checkpoint resume, and 2 DDP processes (gloo)."""

import csv
import os
import subprocess
import sys

import pytest
import torch

from core.networks import load_weights

from .conftest import REPO

TINY = ["optim.batch_size=2", "optim.warmup_steps=1", "data.workers=0", "data.val_count=2", "data.render_size=128",
        "run.log_every=1", "run.val_every=2", "run.checkpoint_every=1", "run.threads=1"]


def _train(out, steps, config="configs/hamr_fast.toml", extra=(), launcher=(sys.executable, "-m")):
    sets = [a for s in TINY + [f"optim.steps={steps}", f"run.out='{out}'", *extra] for a in ("--set", s)]
    command = [*launcher, "training.train", "--config", os.path.join(REPO, config), *sets]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600, env=env)


def _rows(out):
    with open(os.path.join(out, "metrics.csv"), newline="") as f:
        return list(csv.DictReader(f))


def test_train_writes_weights_metrics_curves_and_resumes(tmp_path):
    out = str(tmp_path / "run")
    done = _train(out, 2)
    assert done.returncode == 0, done.stderr[-2000:]
    for name in ("weights.safetensors", "checkpoint.pt", "metrics.csv", "curves.png"):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    model, config = load_weights(os.path.join(out, "weights.safetensors"))
    assert (config.arch, config.input_size) == ("hamr", 96)
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 96, 96))["joints_3d"].shape == (1, 21, 3)
    rows = _rows(out)
    assert [int(r["step"]) for r in rows if r.get("train/loss")] == [1, 2]
    assert any(r.get("val/pa_mpjpe_mm") for r in rows)
    assert torch.load(os.path.join(out, "checkpoint.pt"), weights_only=False)["step"] == 2

    resumed = _train(out, 3)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from" in resumed.stdout and "at step 2" in resumed.stdout
    assert [int(r["step"]) for r in _rows(out) if r.get("train/loss")] == [1, 2, 3]


def test_train_rejects_a_bad_config(tmp_path):
    done = _train(str(tmp_path / "bad"), 1, extra=["loss.l3d=1.0"])
    assert done.returncode != 0 and "unknown term(s) l3d" in done.stderr


@pytest.mark.parametrize("config", ["configs/hamr_fast.toml", "configs/baseline.toml"])
def test_two_ddp_processes_on_the_cpu(tmp_path, config):
    out = str(tmp_path / "ddp")
    launcher = (sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone", "-m")
    done = _train(out, 2, config=config, extra=["run.device='cpu'"], launcher=launcher)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "train: 2 steps done" in done.stdout
    model, _ = load_weights(os.path.join(out, "weights.safetensors"))
    rows = [r for r in _rows(out) if r.get("train/loss")]
    assert [int(r["step"]) for r in rows] == [1, 2]
    assert float(rows[0]["images_per_s"]) > 0
