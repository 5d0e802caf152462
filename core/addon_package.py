"""Build the Blender extension zip with Blender's own extension tool (``handcap addon-zip``).

The tool, ``blender_ext.py``, ships inside the bpy wheel and runs under plain Python, so the
zip can be built without a Blender binary.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import subprocess
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


def build_addon_zip(out_dir: str) -> str:
    """Validate and build ``blender_addon/`` into ``out_dir/handcap-<version>.zip``; returns its path."""
    os.makedirs(out_dir, exist_ok=True)
    for args in (("validate", ADDON_DIR), ("build", "--source-dir", ADDON_DIR, "--output-dir", out_dir)):
        result = run_extension_tool(*args)
        if result.returncode != 0:
            raise RuntimeError(f"blender_ext.py {args[0]} failed:\n{result.stdout}{result.stderr}")
    (path,) = sorted(glob.glob(os.path.join(out_dir, "handcap-*.zip")), key=os.path.getmtime)[-1:]
    return path
