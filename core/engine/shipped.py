"""Which network weights ship with this installation, checked without importing torch.

``--weights`` takes a .safetensors file or the name of a shipped network; this module answers for
both before any model loads, so a wrong value is reported at once (exit 2), and ``--help`` lists
what is really shipped.
"""

from __future__ import annotations

import os
from typing import Optional

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "weights")
SHIPPED = {"trunk": "hamr_trunk.safetensors", "fast": "hamr_fast.safetensors", "accurate": "hamr_accurate.safetensors"}
TRAIN_CONFIG = {"trunk": "configs/hamr_trunk.toml", "fast": "configs/hamr_fast.toml",
                "accurate": "configs/hamr_accurate.toml"}
DEFAULT_ORDER = {"cpu": ("trunk", "fast"), "cuda": ("trunk", "accurate", "fast")}
"""--weights left out: the first of these that is shipped, per device type."""


class EngineError(RuntimeError):
    """Something the user must fix (no weights, no GPU, a wrong weights file); message for the user."""


def shipped_names() -> list[str]:
    """The names of the networks whose weights are present in WEIGHTS_DIR."""
    return [name for name, file in SHIPPED.items() if os.path.isfile(os.path.join(WEIGHTS_DIR, file))]


def weights_help() -> str:
    """--weights' help, naming the networks shipped here."""
    shipped = shipped_names()
    missing = [name for name in SHIPPED if name not in shipped]
    text = (f"network weights: a .safetensors file, or a shipped network by name "
            f"({', '.join(shipped) or 'none'} shipped here")
    if missing:
        text += f"; {', '.join(missing)} not shipped: train it with python -m training.train"
    return text + "); default: the first shipped of trunk, fast (on a GPU: trunk, accurate, fast)"


def missing_weights(name: str) -> EngineError:
    """The error for a network name whose weights are not shipped."""
    config = TRAIN_CONFIG[name]
    out = f"runs/{os.path.splitext(os.path.basename(config))[0]}/weights.safetensors"
    shipped = ", ".join(shipped_names()) or "none"
    return EngineError(f"--weights {name}: the {name} network is not shipped with this installation (shipped: "
                       f"{shipped}; {os.path.join(WEIGHTS_DIR, SHIPPED[name])} is missing). Train it "
                       f"(python -m training.train --config {config}) and pass --weights {out}")


def check_weights(spec: Optional[str]) -> None:
    """EngineError for a --weights value that names no existing file and no shipped network."""
    if not spec:
        if not shipped_names():
            raise missing_weights(DEFAULT_ORDER["cpu"][0])
        return
    if spec in SHIPPED:
        if spec not in shipped_names():
            raise missing_weights(spec)
    elif not os.path.isfile(spec):
        raise EngineError(f"--weights {spec}: no such file" if not os.path.exists(spec) else f"--weights {spec}: not a file")
