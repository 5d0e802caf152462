"""Headless conversion: batch.py under plain Python with the bpy module, and `handcap blend`'s API."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.test_blender_support import (REPO, make_fake_engine, model_capture, save, toy_capture,
                                        write_png)

BATCH = os.path.join(REPO, "blender_addon", "batch.py")
pytest.importorskip("bpy")


def run_batch(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, BATCH, *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd or "/", timeout=300)


@pytest.fixture(scope="module")
def captures(tmp_path_factory):
    folder = tmp_path_factory.mktemp("batch")
    good = save(model_capture(("right",), 3, seed=4)[0], folder / "good.npz")
    other = save(toy_capture(frames=2, sides=("left",)), folder / "other.npz")
    bad = folder / "bad.npz"
    bad.write_bytes(b"not a capture")
    return folder, good, other, str(bad)


def test_batch_goes_on_past_bad_inputs_and_fails_at_the_end(captures, tmp_path):
    folder, good, other, bad = captures
    out = tmp_path / "out"
    result = run_batch(good, bad, folder / "missing.npz", other, "-o", out, "--format", "glb")
    assert result.returncode == 1, result.stderr
    assert "handcap batch: 2 converted, 2 failed" in result.stdout
    assert "bad.npz: not a readable .npz capture file" in result.stdout
    assert "missing.npz: no such file" in result.stdout
    assert sorted(os.listdir(out)) == ["good.glb", "other.glb"]      # nothing half-written


def test_batch_folder_input_to_blend_and_fbx(captures, tmp_path):
    folder, good, other, bad = captures
    clean = tmp_path / "clean"
    clean.mkdir()
    for path in (good, other):
        os.link(path, clean / os.path.basename(path))
    for fmt in ("blend", "fbx"):
        result = run_batch("--", clean, "-o", tmp_path / fmt, "--format", fmt)   # Blender-style "--"
        assert result.returncode == 0, result.stdout + result.stderr
        assert sorted(os.listdir(tmp_path / fmt)) == [f"good.{fmt}", f"other.{fmt}"]
        assert "2 converted, 0 failed" in result.stdout
    assert run_batch(tmp_path / "empty_dir_missing", "-o", tmp_path / "x").returncode == 1


def test_batch_photo_through_the_engine(captures, tmp_path):
    folder, good, other, bad = captures
    env = dict(os.environ, PYTHONPATH=make_fake_engine(tmp_path), FAKE_ENGINE_CAPTURE=good,
               HANDCAP_PYTHON=sys.executable)
    photo = write_png(tmp_path / "hand_photo.png")
    result = run_batch(photo, "-o", tmp_path / "out", "--format", "glb", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert os.listdir(tmp_path / "out") == ["hand_photo.glb"]
    env["HANDCAP_PYTHON"] = str(tmp_path / "no-python")
    result = run_batch(photo, "-o", tmp_path / "out2", env=env)
    assert result.returncode == 1 and "is not an executable file" in result.stdout


def test_handcap_blend_api(captures, tmp_path):
    """What `handcap blend` calls: one OUT file for all captures, or a folder of .blend files."""
    import bpy
    from blender_addon.convert import convert_many
    folder, good, other, bad = captures
    out = tmp_path / "both.blend"
    assert convert_many([good, other], str(out)) == 0
    bpy.ops.wm.open_mainfile(filepath=str(out))
    assert sorted(c.name for c in bpy.context.scene.collection.children) == ["good", "other"]
    assert convert_many([good, bad], str(tmp_path / "never.glb")) == 1
    assert not (tmp_path / "never.glb").exists()
    assert convert_many([good, other], str(tmp_path / "folder")) == 0
    assert sorted(os.listdir(tmp_path / "folder")) == ["good.blend", "other.blend"]
    assert convert_many([good], str(tmp_path / "x.obj")) == 1
