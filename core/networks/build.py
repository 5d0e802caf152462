"""``build_network(config)``: the one place that maps a config to a module."""

from __future__ import annotations

from torch import nn

from .baseline import Baseline
from .config import NetworkConfig
from .hamr import HAMR


def build_network(config: NetworkConfig) -> nn.Module:
    """A randomly initialised network for ``config`` (HAMR or Baseline), in float32 on the CPU."""
    return HAMR(config) if config.arch == "hamr" else Baseline(config)
