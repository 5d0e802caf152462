"""Headless conversion: batch.py under plain Python with the bpy module, and `handcap blend`'s API."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from tests.test_blender_support import (REPO, make_fake_engine, model_capture, save, toy_capture,
                                        write_png)

BATCH = os.path.join(REPO, "blender_addon", "batch.py")
pytest.importorskip("bpy")


def current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def handcap(*args):
    """``python -m core ARGS`` from the repository root."""
    return subprocess.run([sys.executable, "-m", "core", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, timeout=300)


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
    assert result.stderr.splitlines() == [                          # one line per failed input, on stderr
        f"handcap batch: error: {bad}: not a capture file (a capture file is an .npz archive; this file is not one)",
        f"handcap batch: error: {folder / 'missing.npz'}: no such file"]
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
    assert result.returncode == 1 and "is not an executable file" in result.stderr


def test_batch_photo_without_a_hand_exits_3(captures, tmp_path):
    """The engine's exit code 3 (read fine, no hand) is no failure: the scene (camera and photo) is
    written and the batch says which input had no hand."""
    folder, good, other, bad = captures
    empty = save(toy_capture(frames=1, sides=()), tmp_path / "empty.npz")
    env = dict(os.environ, PYTHONPATH=make_fake_engine(tmp_path), FAKE_ENGINE_CAPTURE=good, FAKE_ENGINE_EMPTY=empty,
               HANDCAP_PYTHON=sys.executable, FAKE_ENGINE_MODE="nohand")
    photo = write_png(tmp_path / "landscape.png")
    result = run_batch(photo, good, "-o", tmp_path / "out", env=env)
    assert result.returncode == 3, result.stdout + result.stderr
    assert f"ok      {photo} -> {tmp_path / 'out' / 'landscape.blend'} (no hand found)" in result.stdout
    assert "2 converted, 0 failed, no hand in 1" in result.stdout and result.stderr == ""
    assert sorted(os.listdir(tmp_path / "out")) == ["good.blend", "landscape.blend"]


def test_batch_usage_errors_exit_2(captures, tmp_path):
    folder, good, other, bad = captures
    result = run_batch(good, "-o", tmp_path / "x", "--format", "obj")
    assert result.returncode == 2 and not (tmp_path / "x").exists()
    assert result.stderr.splitlines() == ["batch.py: error: argument --format: invalid choice: 'obj' (choose from "
                                          "'blend', 'fbx', 'glb') (see batch.py --help)"]
    (tmp_path / "file").write_text("")
    result = run_batch(good, "-o", tmp_path / "file" / "out")
    assert result.returncode == 2
    assert result.stderr == f"batch.py: error: {tmp_path / 'file' / 'out'}: cannot create the output folder (Not a directory)\n"


def test_blend_command_errors_on_stderr_and_no_temporary_names(captures, tmp_path):
    """`handcap blend`: a 5-byte text file is 'not a capture file', on stderr, exit 1, nothing
    written; a good capture's output names no temporary file; a capture without hands exits 3."""
    folder, good, other, bad = captures
    text = tmp_path / "five.npz"
    text.write_text("hello")
    result = handcap("blend", text, "-o", tmp_path / "out" / "x.blend")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (f"handcap blend: error: {text}: not a capture file (a capture file is an .npz archive; "
                             "this file is not one)\n")
    assert not (tmp_path / "out").exists()
    result = handcap("blend", good, "-o", tmp_path / "good.blend")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert result.stdout == f"handcap blend: 1 capture(s), 1 hand(s) -> {tmp_path / 'good.blend'}\n"
    assert sorted(os.listdir(tmp_path)) == ["five.npz", "good.blend"]
    assert stat.S_IMODE(os.stat(tmp_path / "good.blend").st_mode) == 0o666 & ~current_umask()
    empty = save(toy_capture(frames=1, sides=()), tmp_path / "empty.npz")
    result = handcap("blend", empty, "-o", tmp_path / "empty.glb")
    assert result.returncode == 3 and "0 hand(s)" in result.stdout and (tmp_path / "empty.glb").is_file()
    result = handcap("blend", good, "-o", tmp_path / "x.obj")
    assert result.returncode == 2 and result.stderr.startswith("handcap blend: error: ")
    assert "unknown output type 'obj'" in result.stderr and not (tmp_path / "x.obj").exists()


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
    assert convert_many([good], str(tmp_path / "x.obj")) == 2


def test_batch_views_through_the_engine(tmp_path):
    """--views V1 V2 V3 --cameras C.json: the views are checked, one engine run (``estimate --views``),
    one output after the first view, holding a camera per view."""
    import json

    from tests.test_blender_views import CAMERA_ENTRY, views_capture, write_cameras
    capture = views_capture(tmp_path, frames=1)
    views = [str(p) for p in capture.views.source_path]
    cameras = write_cameras(tmp_path / "cams.json", [CAMERA_ENTRY] * 3)
    env = dict(os.environ, PYTHONPATH=make_fake_engine(tmp_path), HANDCAP_PYTHON=sys.executable,
               FAKE_ENGINE_CAPTURE=save(capture, tmp_path / "made.npz"))
    result = run_batch("--views", *views, "--cameras", cameras, "-o", tmp_path / "out", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert os.listdir(tmp_path / "out") == ["left_phone.blend"] and "1 converted, 0 failed" in result.stdout
    probe = ("import bpy, json, sys; bpy.ops.wm.open_mainfile(filepath=sys.argv[1]); "
             "print(json.dumps(sorted(o.name for o in bpy.data.objects if o.type == 'CAMERA')))")
    names = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "out" / "left_phone.blend")],
                           capture_output=True, text=True, timeout=120).stdout.strip().splitlines()[-1]
    assert json.loads(names) == ["left_phone camera", "right_phone camera", "top_cam camera"]
    result = run_batch("--views", *views[:2], "--cameras", cameras, "-o", tmp_path / "out2", env=env)
    assert result.returncode == 1 and result.stderr.strip().endswith("3 camera(s) for 2 views: the cameras file "
                                                                     "needs one entry per view, in the order of the views")
    for args in (["--views", *views], ["--cameras", cameras, views[0]], [views[0], "--views", *views, "--cameras",
                                                                         cameras]):
        result = run_batch(*args, "-o", tmp_path / "out3", env=env)
        assert result.returncode == 2 and "error:" in result.stderr, args
