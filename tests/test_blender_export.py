"""Exports keep the animation exact: FBX and GLB written, re-imported and compared to the layer."""

from __future__ import annotations

import json
import os
import struct

import numpy as np
import pytest

from tests.test_blender_support import (bpy_or_skip, cv_to_world, lbs, match_rows, model_capture,
                                        reset_scene, rest_world, save, toy_capture,
                                        world_vertices)

bpy = bpy_or_skip()

from blender_addon import export_scene, import_capture  # noqa: E402

TOL_M = 1e-4
FRAMES = 5


@pytest.fixture(scope="module")
def hands(tmp_path_factory):
    """Right and left hands with pose correctives (shape keys), 5 frames, 30 fps."""
    folder = tmp_path_factory.mktemp("export")
    capture, refs = model_capture(("right", "left"), FRAMES, correctives=True, seed=3)
    return save(capture, folder / "hands.npz"), capture, refs


def reimported_error(refs, capture, widen_sliders: bool) -> float:
    """Max vertex error over all frames and hands of the re-imported scene."""
    scene = bpy.context.scene
    meshes = sorted((o for o in bpy.data.objects if o.type == "MESH" and o.find_armature()),
                    key=lambda o: o.name)
    assert len(meshes) == 2
    err = 0.0
    for mesh, track, ref in zip(meshes, capture.tracks, refs):
        assert mesh.data.shape_keys is not None and len(mesh.data.shape_keys.key_blocks) == 136
        if widen_sliders:
            for key in mesh.data.shape_keys.key_blocks[1:]:
                key.slider_min, key.slider_max = -2.0, 2.0
        rows = match_rows(rest_world(mesh), cv_to_world(track.rest_vertices))
        for f in range(1, FRAMES + 1):
            err = max(err, np.abs(world_vertices(mesh, scene, f) - cv_to_world(ref[f - 1])[rows]).max())
    return err


def export(path, hands):
    reset_scene()
    import_capture.import_files([hands[0]], bpy.context)
    return export_scene.write_scene(path)


def test_fbx_round_trip_is_exact(hands, tmp_path):
    _, capture, refs = hands
    path = export(str(tmp_path / "hands.fbx"), hands)
    scene = reset_scene()
    scene.render.fps = 30
    # anim_offset=0: Blender's FBX importer shifts animation by one frame by default.
    bpy.ops.import_scene.fbx(filepath=path, anim_offset=0.0)
    err = reimported_error(refs, capture, widen_sliders=False)
    print(f"max |FBX re-import - HandLayer|: {err * 1e3:.5f} mm")
    assert err < TOL_M


def test_glb_round_trip_is_exact(hands, tmp_path):
    _, capture, refs = hands
    path = export(str(tmp_path / "hands.glb"), hands)
    scene = reset_scene()
    scene.render.fps = 30
    bpy.ops.import_scene.gltf(filepath=path)
    # Blender 5.0's glTF importer sizes each shape key's slider range from the first key only
    # (``min(coords[1:2])`` in io_scene_gltf2/blender/imp/animation_weight.py), which clamps
    # later corrective values; the file itself holds them exactly, so widen and compare.
    err = reimported_error(refs, capture, widen_sliders=True)
    print(f"max |GLB re-import - HandLayer|: {err * 1e3:.5f} mm")
    assert err < TOL_M


def test_glb_has_one_animation_with_bones_and_shape_keys_and_all_influences(tmp_path):
    # the toy hand has vertices with 6 bone influences (the open hand has at most 4)
    capture = toy_capture(frames=FRAMES, sides=("right", "left"), correctives=True)
    path = export(str(tmp_path / "toy.glb"), (save(capture, tmp_path / "toy.npz"),))
    with open(path, "rb") as f:
        data = f.read()
    length = struct.unpack("<I", data[12:16])[0]
    gltf = json.loads(data[20:20 + length])
    assert len(gltf["animations"]) == 1
    targets = {c["target"]["path"] for c in gltf["animations"][0]["channels"]}
    assert {"rotation", "translation", "weights"} <= targets
    attributes = gltf["meshes"][0]["primitives"][0]["attributes"]
    assert "JOINTS_1" in attributes                # more than 4 influences kept
    scene = reset_scene()
    scene.render.fps = 30
    bpy.ops.import_scene.gltf(filepath=path)
    err = reimported_error([lbs(t) for t in capture.tracks], capture, widen_sliders=True)
    print(f"max |GLB re-import - numpy LBS|, 6 influences per vertex: {err * 1e3:.5f} mm")
    assert err < TOL_M
    assert export_scene.FBX_SETTINGS["bake_anim_simplify_factor"] == 0


def test_unknown_extension_and_failed_writer_leave_nothing(hands, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="unknown output type"):
        export_scene.write_scene(str(tmp_path / "hands.obj"))
    target = tmp_path / "hands.blend"
    target.write_bytes(b"previous version")

    def broken(path):
        with open(path, "wb") as f:
            f.write(b"half a file")
        raise RuntimeError("disk full")

    monkeypatch.setitem(export_scene._WRITERS, "blend", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        export_scene.write_scene(str(target))
    assert target.read_bytes() == b"previous version"
    assert os.listdir(tmp_path) == ["hands.blend"]
