"""What Install Engine asks pip for, how big it is, and how far pip has got (no bpy).

The engine is handcap's wheel plus torch 2.13, OpenCV and a few more from the package index. Its
size depends on the platform and on which torch build pip takes:
- Linux: the package index's torch is the CUDA build (several GB). Users without an NVIDIA GPU
  take PyTorch's CPU wheel index as an extra index instead (``--extra-index-url``): its
  ``2.13.0+cpu`` satisfies the pin ``torch==2.13.0`` and pip prefers it to the plain release.
- Windows and macOS: the package index's torch is already a CPU build (Apple's GPU via MPS).

pip prints ``Downloading NAME (SIZE)`` (or ``Using cached NAME (SIZE)``) before each file;
``DownloadMeter`` adds these up into megabytes done against the platform's expected total.
"""

from __future__ import annotations

import os
import re
import shutil
import sys

CPU_INDEX = "https://download.pytorch.org/whl/cpu"      # PyTorch's own index of CPU-only wheels

# (download MB, disk MB) of the engine per platform, measured 2026-12-07. Windows (Python 3.11) and
# macOS arm64 (3.11): `python -m bench.engine_size` (the wheels of pyproject's pinned dependencies
# for that platform, and their unpacked size). Linux CUDA: a real Install Engine in Debian 13's
# Blender 4.3.2 on Python 3.13 (.ci/user_path.sh): pip's download lines, and `du` of the venv.
# Linux CPU: the same dependencies with torch 2.13.0+cpu (Python 3.11), downloaded with pip here.
ENGINE_SIZES_MB = {
    "linux-cuda": (2910, 5330),
    "linux-cpu": (360, 1190),
    "windows": (240, 810),
    "macos": (230, 820),
}
TORCH_CHOICES = (        # the preference's items: (identifier, label, description)
    ("AUTO", "Automatic", "CPU-only torch on Linux without an NVIDIA GPU, else the package index's torch"),
    ("CPU", "CPU only", "PyTorch's CPU-only wheels: a much smaller download, no GPU"),
    ("DEFAULT", "Package index", "The package index's torch: the CUDA build on Linux, CPU on Windows and macOS"),
)


def platform_name(cpu_only: bool, system: str = sys.platform) -> str:
    """The key of ENGINE_SIZES_MB for this system and torch choice."""
    if system.startswith("win"):
        return "windows"
    if system == "darwin":
        return "macos"
    return "linux-cpu" if cpu_only else "linux-cuda"


def nvidia_gpu_present() -> bool:
    """Whether an NVIDIA driver is installed (its kernel module's file on Linux, nvidia-smi anywhere)."""
    return os.path.exists("/proc/driver/nvidia/version") or shutil.which("nvidia-smi") is not None


def wants_cpu_index(choice: str, system: str = sys.platform, has_nvidia: bool = None) -> bool:
    """Whether pip should take torch from PyTorch's CPU index: only on Linux (elsewhere the index's
    torch is a CPU build already), for "CPU", or for "AUTO" when no NVIDIA GPU is there."""
    if not system.startswith("linux"):
        return False
    if choice == "CPU":
        return True
    if choice == "AUTO":
        return not (nvidia_gpu_present() if has_nvidia is None else has_nvidia)
    return False


def size_text(cpu_only: bool, system: str = sys.platform) -> str:
    """'about 330 MB to download, 1.2 GB on disk' for this platform and choice."""
    download, disk = ENGINE_SIZES_MB[platform_name(cpu_only, system)]
    return f"about {megabytes_text(download)} to download, {megabytes_text(disk)} on disk"


def megabytes_text(mb: float) -> str:
    return f"{mb / 1024:.1f} GB" if mb >= 1000 else f"{mb:.0f} MB"


def pip_arguments(wheels: list, find_links: list = (), offline: bool = False, cpu_only: bool = False) -> list:
    """``pip install`` arguments for handcap from ``wheels`` (files) or a project folder, with
    ``find_links`` (folders of wheels) searched too; offline: only those (``--no-index``); cpu_only:
    PyTorch's CPU index beside the package index (ignored offline: the local wheels decide)."""
    args = ["install", "--disable-pip-version-check", "--no-input", "--progress-bar", "off"]
    if offline:
        args.append("--no-index")
    elif cpu_only:
        args += ["--extra-index-url", CPU_INDEX]
    for folder in find_links:
        args += ["--find-links", folder]
    return args + list(wheels)


_FILE_LINE = re.compile(r"^(Downloading|Using cached)\s+(\S+)\s+\(([\d.]+)\s*(kB|KB|MB|GB|B)\)")
_UNIT_MB = {"B": 1 / 2**20, "kB": 1 / 1024, "KB": 1 / 1024, "MB": 1.0, "GB": 1024.0}


class DownloadMeter:
    """Megabytes of wheels pip has fetched (or taken from its cache) against ``expected_mb``.

    A file counts as done when pip moves on to the next line; ``fraction`` stays below 1 until
    pip has finished, since the expected total is an estimate."""

    def __init__(self, expected_mb: float):
        self.expected_mb = float(expected_mb)
        self.done_mb = 0.0
        self.current = None            # (file name, MB) being downloaded

    def feed(self, line: str) -> bool:
        """Take one line of pip's output; True when it named a new file."""
        if self.current is not None:
            self.done_mb += self.current[1]
            self.current = None
        match = _FILE_LINE.match(line.strip())
        if not match:
            return False
        name = match.group(2).rsplit("/", 1)[-1]
        if name.endswith(".metadata"):            # a package's metadata only, not its file
            return False
        self.current = (name, float(match.group(3)) * _UNIT_MB[match.group(4)])
        return True

    @property
    def fraction(self) -> float:
        return min(0.99, self.done_mb / self.expected_mb) if self.expected_mb > 0 else 0.0

    def text(self) -> str:
        """'412 of ~3.0 GB: downloading torch-2.13.0-cp313-... (906 MB)'."""
        done = f"{self.done_mb:.0f} of ~{megabytes_text(self.expected_mb)}"
        if self.current is None:
            return done
        return f"{done}: downloading {self.current[0][:60]} ({megabytes_text(self.current[1])})"
