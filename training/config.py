"""Training configuration: one TOML file, read into small dataclasses.

Example (configs/hamr_fast.toml):

    [network]            # core.networks.NetworkConfig fields
    arch = "hamr"
    backbone = "resnet18"
    input_size = 128

    [data]
    train = ["synthetic"]        # "synthetic", "freihand:DIR", "rhd:DIR" (mixed evenly)
    render_size = 224            # synthetic renders before cropping, pixels
    backgrounds = ""             # optional folder of background images
    workers = 2
    val_count = 256              # held-out synthetic samples for validation

    [loss]                       # HamrLoss weights (training.losses.DEFAULT_WEIGHTS fills the
    silhouette = 0.0             # rest); 0 switches a term off; the baseline ignores [loss]

    [optim]
    batch_size = 32
    steps = 20000
    lr = 1e-3

    [run]
    out = "runs/hamr_fast"
    seed = 0
"""

from __future__ import annotations

import dataclasses
import tomllib

from core.networks.config import NetworkConfig


@dataclasses.dataclass
class DataConfig:
    train: list = dataclasses.field(default_factory=lambda: ["synthetic"])
    render_size: int = 224
    backgrounds: str = ""
    workers: int = 2
    val_count: int = 256


@dataclasses.dataclass
class OptimConfig:
    batch_size: int = 32
    steps: int = 10000
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 200
    grad_clip: float = 5.0


@dataclasses.dataclass
class RunConfig:
    out: str = "runs/default"
    seed: int = 0
    log_every: int = 20
    val_every: int = 500
    checkpoint_every: int = 500
    device: str = "auto"           # auto | cpu | cuda
    amp: bool = True               # bf16 autocast on CUDA (ignored on CPU)
    threads: int = 0               # CPU threads for torch (0: leave torch's default)


@dataclasses.dataclass
class TrainConfig:
    network: NetworkConfig
    data: DataConfig
    loss: dict
    optim: OptimConfig
    run: RunConfig

    def to_dict(self) -> dict:
        return {"network": self.network.to_dict(), "data": dataclasses.asdict(self.data), "loss": dict(self.loss),
                "optim": dataclasses.asdict(self.optim), "run": dataclasses.asdict(self.run)}


def _fill(cls, values: dict, section: str):
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"[{section}]: unknown setting(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
    return cls(**values)


def _loss_weights(values: dict) -> dict:
    from .losses import DEFAULT_WEIGHTS
    unknown = set(values) - set(DEFAULT_WEIGHTS)
    if unknown:
        raise ValueError(f"[loss]: unknown term(s) {', '.join(sorted(unknown))}; known: {', '.join(DEFAULT_WEIGHTS)}")
    return {**DEFAULT_WEIGHTS, **{k: float(v) for k, v in values.items()}}


def from_dict(data: dict) -> TrainConfig:
    unknown = set(data) - {"network", "data", "loss", "optim", "run"}
    if unknown:
        raise ValueError(f"unknown section(s) {', '.join(sorted(unknown))}")
    return TrainConfig(
        network=NetworkConfig.from_dict(data.get("network", {})),
        data=_fill(DataConfig, data.get("data", {}), "data"),
        loss=_loss_weights(data.get("loss", {})),
        optim=_fill(OptimConfig, data.get("optim", {}), "optim"),
        run=_fill(RunConfig, data.get("run", {}), "run"),
    )


def load_config(path: str, overrides: list = ()) -> TrainConfig:
    """Read a TOML config; ``overrides`` like ["optim.steps=100", "run.out='x'"] (TOML values) win."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ValueError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: not valid TOML ({e})") from None
    for item in overrides:
        key, _, value = item.partition("=")
        section, _, name = key.strip().partition(".")
        if not name or not value:
            raise ValueError(f"override {item!r} must look like section.name=value")
        data.setdefault(section, {})[name] = tomllib.loads(f"v = {value}")["v"]
    return from_dict(data)
