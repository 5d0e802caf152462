"""Build the Blender extension zip with Blender's own extension tool (``handcap addon-zip``).

The tool, ``blender_ext.py``, ships inside the bpy wheel and runs under plain Python, so the
zip can be built without a Blender binary. The zip also carries a wheel of handcap itself in
``wheels/`` (not the manifest's ``wheels``, which Blender would install into its own Python):
the add-on's Install Engine installs it into the engine's private environment, so installing
needs the package index only for third-party wheels.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import subprocess
import tempfile
import sys

ADDON_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "blender_addon")


def blender_extension_tool() -> str:
    """Path of Blender's ``blender_ext.py`` inside the installed bpy module."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("Blender's Python module is not installed: pip install -e '.[blender]'")
    matches = glob.glob(os.path.join(spec.submodule_search_locations[0], "*", "scripts", "addons_core",
                                     "bl_pkg", "cli", "blender_ext.py"))
    if not matches:
        raise RuntimeError("blender_ext.py not found inside the bpy module")
    return matches[0]


def run_extension_tool(*args: str) -> subprocess.CompletedProcess:
    """Run ``blender_ext.py ARGS...`` with this Python; output captured."""
    return subprocess.run([sys.executable, blender_extension_tool(), *args], capture_output=True, text=True)


def build_engine_wheel(out_dir: str) -> str:
    """``handcap-<version>-py3-none-any.whl`` of this checkout in ``out_dir`` (pip, no dependencies,
    no download: the build uses this Python's setuptools). The build's own leftovers in the checkout
    (build/, handcap.egg-info/) are removed when they were not there before."""
    root = os.path.dirname(ADDON_DIR)
    leftovers = [p for p in (os.path.join(root, "build"), os.path.join(root, "handcap.egg-info")) if not os.path.exists(p)]
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                             "--disable-pip-version-check", "-q", "-w", out_dir, os.path.dirname(ADDON_DIR)],
                            capture_output=True, text=True)
    for path in leftovers:
        shutil.rmtree(path, ignore_errors=True)
    wheels = glob.glob(os.path.join(out_dir, "handcap-*.whl"))
    if result.returncode != 0 or not wheels:
        raise RuntimeError(f"building the handcap wheel failed:\n{result.stdout}{result.stderr}")
    return wheels[0]


def build_addon_zip(out_dir: str) -> str:
    """Validate and build ``blender_addon/`` (plus the engine wheel in wheels/) into
    ``out_dir/handcap-<version>.zip``; returns its path."""
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="handcap-addon-") as tmp:
        source = os.path.join(tmp, "blender_addon")
        shutil.copytree(ADDON_DIR, source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "wheels"))
        build_engine_wheel(os.path.join(source, "wheels"))
        for args in (("validate", source), ("build", "--source-dir", source, "--output-dir", out_dir)):
            result = run_extension_tool(*args)
            if result.returncode != 0:
                raise RuntimeError(f"blender_ext.py {args[0]} failed:\n{result.stdout}{result.stderr}")
    (path,) = sorted(glob.glob(os.path.join(out_dir, "handcap-*.zip")), key=os.path.getmtime)[-1:]
    return path
