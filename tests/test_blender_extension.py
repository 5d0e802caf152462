"""The add-on as a Blender extension: import rules, manifest validation, zip build, headless install."""

from __future__ import annotations

import ast
import glob
import json
import os
import subprocess
import sys
import zipfile

import pytest

from core.addon_package import run_extension_tool
from core.cli import main as cli_main
from tests.test_blender_support import REPO, bpy_or_skip, make_fake_engine, save, toy_capture, write_png

ADDON = os.path.join(REPO, "blender_addon")
ALLOWED = {"bpy", "bpy_extras", "numpy"}      # bpy_extras ships inside bpy
# modules that must import without Blender (core imports capture_format from an env without bpy)
BPY_FREE = ("capture_format", "naming", "rig_math", "camera_math", "engine", "regions", "views_input",
            "retarget.name_mapping", "retarget.rotations", "retarget.bone_transfer")


def addon_sources():
    return sorted(glob.glob(os.path.join(ADDON, "**", "*.py"), recursive=True))


def top_level_imports(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield node, [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node, [node.module.split(".")[0]]


def test_addon_imports_only_bpy_numpy_and_the_standard_library():
    for path in addon_sources():
        tree = ast.parse(open(path).read(), path)
        for node, names in top_level_imports(tree):
            for name in names:
                assert name in ALLOWED or name in sys.stdlib_module_names, \
                    f"{os.path.basename(path)}:{node.lineno} imports {name}"


def test_init_imports_no_bpy_and_bpy_free_modules_work_without_it():
    tree = ast.parse(open(os.path.join(ADDON, "__init__.py")).read())
    module_level = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert module_level == []                        # register() imports lazily
    assert not any(isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "bl_info" for t in n.targets)
                   for n in tree.body)
    code = ("import sys; sys.modules['bpy'] = None; import blender_addon; "
            + "; ".join(f"import blender_addon.{m}" for m in BPY_FREE))
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_a_blender_without_numpy_is_told_what_to_install():
    """A distribution's Blender on a system Python without numpy (Debian's blender does not depend
    on python3-numpy): enabling the add-on fails with what to install, not a bare ImportError."""
    code = ("import sys; sys.modules['numpy'] = None; import blender_addon\n"
            "try:\n    blender_addon.register()\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert "needs numpy in Blender's Python" in out and "python3-numpy" in out


def test_no_bl_info_anywhere_and_relative_imports():
    for path in addon_sources():
        source = open(path).read()
        assert "bl_info" not in source
        for node, names in top_level_imports(ast.parse(source)):
            assert names[0] != "blender_addon", f"{path}: use relative imports"


def test_manifest_validates_with_blenders_own_tool():
    bpy_or_skip()
    result = run_extension_tool("validate", ADDON)
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = open(os.path.join(ADDON, "blender_manifest.toml")).read()
    for line in ('id = "handcap"', 'type = "add-on"', 'blender_version_min = "4.2.0"',
                 '"SPDX:GPL-3.0-or-later"', 'schema_version = "1.0.0"'):
        assert line in manifest


@pytest.fixture(scope="module")
def built_zip(tmp_path_factory):
    """The zip as a user builds it, with the documented command `handcap addon-zip -o DIR`."""
    bpy_or_skip()
    out = tmp_path_factory.mktemp("dist")
    assert cli_main(["addon-zip", "-o", str(out)]) == 0
    (path,) = glob.glob(str(out / "handcap-*.zip"))
    return path


def test_zip_holds_the_addon_and_nothing_else(built_zip):
    names = zipfile.ZipFile(built_zip).namelist()
    assert "blender_manifest.toml" in names and "__init__.py" in names and "batch.py" in names
    assert "retarget/bone_transfer.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".md") or n.startswith(".")]


INSTALL_SCRIPT = r"""
import json, os, sys
import bpy
zip_path, capture, photo = sys.argv[1:4]
bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
key = "bl_ext.user_default.handcap"
result = {"enabled": key in bpy.context.preferences.addons}
prefs = bpy.context.preferences.addons[key].preferences
result["prefs_class"] = type(prefs).__name__
prefs.engine_python = sys.executable
result["import"] = list(bpy.ops.handcap.import_capture(filepath=capture))
source = next(o for o in bpy.data.objects if o.type == "ARMATURE")
target = source.copy()
target.data = source.data.copy()
target.animation_data_clear()
bpy.context.scene.collection.objects.link(target)
settings = bpy.context.scene.handcap_retarget
settings.target, settings.source = target, source
result["retarget"] = list(bpy.ops.handcap.retarget())
result["estimate"] = list(bpy.ops.handcap.estimate(input_path=photo))
result["region"] = list(bpy.ops.handcap.region_add(x0=1, y0=2, x1=30, y1=40))
result["collections"] = sorted(c.name for c in bpy.context.scene.collection.children)
result["panel"] = hasattr(bpy.types, "HANDCAP_PT_estimate")
menu = bpy.types.TOPBAR_MT_file_import._dyn_ui_initialize()
result["menu"] = any("handcap" in getattr(f, "__module__", "") for f in menu)
bpy.ops.preferences.addon_disable(module=key)
result["unregistered"] = not any(hasattr(bpy.types, name)
                                 for name in ("HANDCAP_PT_estimate", "HANDCAP_PT_regions_image",
                                              "HANDCAP_PT_retarget", "HANDCAP_OT_retarget"))
print("RESULT " + json.dumps(result))
"""


def test_built_zip_installs_headlessly_and_its_operators_run(built_zip, tmp_path):
    pytest.importorskip("bpy")
    capture = save(toy_capture(frames=3), tmp_path / "take.npz")
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "blender_user"),
               PYTHONPATH=make_fake_engine(tmp_path), FAKE_ENGINE_CAPTURE=capture)
    env.pop("HANDCAP_PYTHON", None)                 # the preference must be what finds the engine
    script = tmp_path / "install.py"
    script.write_text(INSTALL_SCRIPT)
    photo = write_png(tmp_path / "snapshot.png")
    result = subprocess.run([sys.executable, str(script), built_zip, capture, photo], env=env,
                            capture_output=True, text=True, cwd=str(tmp_path), timeout=300)
    lines = [l for l in result.stdout.splitlines() if l.startswith("RESULT ")]
    assert result.returncode == 0 and lines, result.stdout + result.stderr
    got = json.loads(lines[0][len("RESULT "):])
    assert got == {"enabled": True, "prefs_class": "HANDCAP_AddonPreferences",
                   "import": ["FINISHED"], "retarget": ["FINISHED"], "estimate": ["FINISHED"], "region": ["FINISHED"],
                   "collections": ["Collection", "snapshot", "take"], "panel": True, "menu": True,
                   "unregistered": True}
    installed = tmp_path / "blender_user" / "extensions" / "user_default" / "handcap"
    assert (installed / "blender_manifest.toml").is_file()
