"""``python -m bench.engine_size``: what Install Engine downloads and puts on disk, per platform.

For each platform, uv resolves handcap's run-time dependencies (pyproject.toml's ``dependencies``,
exactly as pinned there) for that platform's Python (pip alone evaluates environment markers
for the machine it runs on, so it would ask Linux's CUDA packages for Windows too), then pip
downloads those wheels for that platform, without installing them;
the download is the wheels' total size and the disk is their total unpacked size (what a venv
holds, give or take pip's own few MB). The numbers go into ``blender_addon.engine_install.
ENGINE_SIZES_MB``, which the add-on's preferences show before Install Engine.

    python -m bench.engine_size [--platforms linux-cuda windows macos-arm64] [--keep DIR]

It needs the package index (hundreds of MB to GBs per platform) and ``uv`` (``pip install uv``);
it is a maintainer's command, not a test. PyTorch's CPU index is not reachable from every machine: the Linux CPU-only row is
measured only where it is (``--platforms linux-cpu``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import tomllib
import zipfile

from blender_addon.engine_packages import CPU_INDEX

from .common import REPO
LINUX = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]
PLATFORMS = {      # name -> (uv --python-platform, pip --platform tags, --python-version, extra index arguments)
    "linux-cuda": ("x86_64-manylinux_2_28", LINUX, "3.13", []),
    "linux-cpu": ("x86_64-manylinux_2_28", LINUX, "3.13", ["--extra-index-url", CPU_INDEX]),
    "windows": ("x86_64-pc-windows-msvc", ["win_amd64"], "3.11", []),
    "macos-arm64": ("aarch64-apple-darwin", [f"macosx_{v}_0_arm64" for v in (11, 12, 13, 14, 15)], "3.11", []),
}


def dependencies() -> list:
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]["dependencies"]


def measure(name: str, folder: str) -> dict:
    """Download the dependencies for platform ``name`` into ``folder``; {"download_mb", "disk_mb", "wheels"}."""
    uv_platform, tags, python, extra = PLATFORMS[name]
    requirements = os.path.join(folder, "requirements.in")
    with open(requirements, "w") as f:
        f.write("\n".join(dependencies()) + "\n")
    env = dict(os.environ, MACOSX_DEPLOYMENT_TARGET="14.0")     # torch 2.13's macOS wheels are for macOS 14+
    pinned = subprocess.run(["uv", "pip", "compile", requirements, "--python-platform", uv_platform, "--python-version",
                             python, "--no-header", "--no-annotate", "--quiet", *extra],
                            check=True, capture_output=True, text=True, env=env).stdout.split()
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", python,
               "--implementation", "cp", "--no-cache-dir", "--disable-pip-version-check", "-q", "-d", folder,
               *(a for t in tags for a in ("--platform", t)), *extra, *pinned]
    env = dict(os.environ, PIP_FIND_LINKS="", PIP_CONSTRAINT="")          # the index's wheels, not a local file
    subprocess.run(command, check=True, env=env)
    wheels = sorted(os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".whl"))
    download = sum(os.path.getsize(w) for w in wheels)
    disk = 0
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as z:
            disk += sum(i.file_size for i in z.infolist())
    return {"download_mb": round(download / 2**20), "disk_mb": round(disk / 2**20), "wheels": len(wheels)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.engine_size", description=__doc__.split("\n\n")[0])
    parser.add_argument("--platforms", nargs="+", choices=sorted(PLATFORMS), default=["linux-cuda", "windows", "macos-arm64"])
    parser.add_argument("--keep", help="download into this folder (kept) instead of a temporary one")
    args = parser.parse_args(argv)
    for name in args.platforms:
        with tempfile.TemporaryDirectory(prefix="engine-size-") as tmp:
            folder = os.path.join(args.keep, name) if args.keep else tmp
            os.makedirs(folder, exist_ok=True)
            try:
                result = measure(name, folder)
            except subprocess.CalledProcessError as e:
                print(f"{name}: pip download failed ({e.returncode})", flush=True)
                continue
            print(f"{name}: {result['download_mb']} MB to download, {result['disk_mb']} MB on disk "
                  f"({result['wheels']} wheels)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
