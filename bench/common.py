"""What every section of the benchmark shares: timing statistics, table rows, the machine, the models."""

from __future__ import annotations

import dataclasses
import os
import platform
import statistics
import time
from typing import Callable, Optional

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = ("trunk", "fast", "accurate")   # the engine's shipped weights (core/weights/hamr_<name>.safetensors), default first


@dataclasses.dataclass
class Options:
    """The command line's settings, as every section sees them."""

    repeat: int = 3                    # timed runs after the warm-up (the median is reported)
    frames: int = 96                   # frames of the 640x480 benchmark video
    quick: bool = False                # a smoke run (QUICK's sizes; the agreement section takes 3 photos)
    accuracy_count: int = 200          # held-out synthetic samples for the accuracy section
    blender_frames: int = 10_000       # frames keyed and exported in the Blender section
    train_steps: int = 3               # timed training steps per run (one run = one logging window)
    real_images: str = os.path.join(os.path.dirname(REPO), "shared", "real_images")
    ge_dev: str = os.path.join(os.path.dirname(REPO), "shared", "real3d", "ge_dev")   # photos with 3D truth


QUICK = {"repeat": 1, "frames": 16, "accuracy_count": 8, "blender_frames": 200, "train_steps": 1}


# ----------------------------------------------------------------------------------- timing

def stat(values: list, unit: str) -> dict:
    """{"median", "min", "max", "n", "unit"} of a list of measurements (already in ``unit``)."""
    values = [float(v) for v in values]
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values),
            "unit": unit, "runs": values}


def measure(fn: Callable, repeat: int, warmup: int = 1, setup: Optional[Callable] = None) -> list:
    """Seconds of ``fn(setup())`` for each of ``repeat`` runs after ``warmup`` untimed ones (setup untimed)."""
    times = []
    for i in range(warmup + repeat):
        arg = setup() if setup is not None else None
        start = time.perf_counter()
        fn(arg)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def ms(seconds: list) -> dict:
    return stat([1000 * s for s in seconds], "ms")


def rate(count: float, seconds: list, unit: str) -> dict:
    """count / seconds per run, e.g. frames/s."""
    return stat([count / s for s in seconds], unit)


# ------------------------------------------------------------------------------------- rows

@dataclasses.dataclass
class Row:
    """One line of the table. ``value`` is a stat dict (median with spread), or a number or text."""

    section: str
    measurement: str
    value: object
    unit: str = ""
    reference: str = ""
    ratio: Optional[float] = None


def number(x: float) -> str:
    """A compact human number: 3 significant digits, thousands separated."""
    if x is None:
        return ""
    if isinstance(x, str):
        return x
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def value_text(row: Row) -> tuple[str, str]:
    """(value, spread) cells of a row."""
    v = row.value
    if isinstance(v, dict):
        unit = row.unit or v.get("unit", "")
        spread = f"{number(v['min'])}-{number(v['max'])} (n={v['n']})" if v.get("n", 1) > 1 else "n=1"
        return f"{number(v['median'])} {unit}".strip(), spread
    return f"{number(v)} {row.unit}".strip(), ""


def skipped(section: str, what: str, why: str) -> Row:
    return Row(section, what, f"({why})")


# ---------------------------------------------------------------------------------- machine

def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """CPU model and cores, memory, Python, torch, GPU (if any), MediaPipe and bpy versions."""
    import torch
    info = {"cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    try:
        with open("/proc/meminfo") as f:
            info["memory_gb"] = round(int(f.readline().split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    for name in ("mediapipe", "bpy"):
        try:
            from importlib.metadata import version
            info[name] = version(name)
        except Exception:
            info[name] = None
    return info


def shipped_weights(name: str) -> Optional[str]:
    """core/weights/hamr_<name>.safetensors, or None when it is not there."""
    from core.engine.network import SHIPPED, WEIGHTS_DIR
    path = os.path.join(WEIGHTS_DIR, SHIPPED[name])
    return path if os.path.isfile(path) else None
