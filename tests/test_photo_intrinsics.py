"""handcap estimate reads a photo's own intrinsics from PHOTO_K.json / PHOTO_K.npy beside it."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np

from blender_addon.capture_format import load_capture
from core.engine.run import intrinsics, sidecar_intrinsics

from .test_bad_input import DEMO, estimate


def test_sidecar_files_are_found_and_read(tmp_path):
    photo = tmp_path / "hand.jpg"
    photo.write_bytes(b"")
    assert sidecar_intrinsics(str(photo)) is None
    K = [[500.0, 0.0, 120.0], [0.0, 510.0, 130.0], [0.0, 0.0, 1.0]]
    (tmp_path / "hand_K.json").write_text(json.dumps(K))
    assert sidecar_intrinsics(str(photo)) == str(tmp_path / "hand_K.json")
    assert np.allclose(intrinsics(10, 10, K_file=str(tmp_path / "hand_K.json")), K)
    np.save(tmp_path / "hand_K.npy", np.asarray(K) * 2)
    assert sidecar_intrinsics(str(photo)) == str(tmp_path / "hand_K.npy")       # .npy first


def test_estimate_uses_the_photos_own_camera_and_names_a_bad_one(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(DEMO, folder / "a.jpg")
    shutil.copy(DEMO, folder / "b.jpg")
    K = np.array([[612.5, 0.0, 101.0], [0.0, 611.0, 99.5], [0.0, 0.0, 1.0]])
    (folder / "a_K.json").write_text(json.dumps(K.tolist()))
    (folder / "b_K.json").write_text("[[1, 2], [3, 4]]")                          # not 3x3
    out = tmp_path / "out"
    result = estimate(folder / "a.jpg", folder / "b.jpg", "-o", out)
    assert result.returncode == 1, result.stderr
    assert np.allclose(load_capture(str(out / "a.npz")).K, K, atol=1e-4)
    assert not os.path.exists(out / "b.npz")
    lines = [line for line in result.stderr.splitlines() if "b_K.json" in line]
    assert len(lines) == 1 and "3x3" in lines[0], result.stderr
