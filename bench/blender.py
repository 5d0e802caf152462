"""The Blender add-on's scene building (bpy module): rig build, bulk keyframing, whole import, FBX and GLB export.

Times: building one rig (mesh, UVs, material, 16 bones, vertex groups, armature modifier,
camera) from the open hand model; keying N frames (16 bone rotations and the root location
through slotted actions + foreach_set); importing a whole N-frame capture file (load, build,
key); writing that scene as FBX and as GLB with the add-on's export settings (every frame
baked). For scale, Blender's per-key ``keyframe_insert`` on 50 frames, extrapolated to N, is
the reference of the keying row. Targets (ARCHITECTURE.md): rig < 0.5 s, 10,000 frames keyed < 1 s.
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np

from .common import Options, Row, measure, ms

NAIVE_FRAMES = 50          # frames keyed one keyframe_insert at a time, for scale


def make_capture(frames: int):
    """The open hand with ``frames`` prior-sampled poses (core's torch layer), 640x480 camera."""
    import torch

    from blender_addon.capture_format import Capture
    from core.capture import default_intrinsics, track_from_layer
    from core.hand_model import HandLayer, PosePrior, load_hand_model

    model = load_hand_model("open", "right")
    pose = PosePrior(model).sample(frames, torch.Generator().manual_seed(0), global_orient=True).numpy()
    transl = np.tile([0.0, 0.0, 0.5], (frames, 1)).astype(np.float32)
    K = default_intrinsics(640, 480)
    track = track_from_layer(HandLayer(model), np.zeros(10, np.float32), pose, transl, K)
    return Capture("open_hand", "", np.array([640, 480]), K, 30.0, [track])


def naive_keying_seconds(frames: int) -> float:
    """Seconds to key ``frames`` frames the way a naive importer would (values set, then
    ``keyframe_insert`` per bone per frame), measured on NAIVE_FRAMES frames and scaled."""
    import bpy

    from blender_addon import import_capture

    bpy.ops.wm.read_factory_settings(use_empty=True)
    armature = import_capture.import_captures([make_capture(1)], ["bench.npz"], bpy.context)[0].rigs[0][0]
    armature.animation_data_clear()
    quats = np.random.default_rng(0).normal(size=(NAIVE_FRAMES, 16, 4))
    quats /= np.linalg.norm(quats, axis=-1, keepdims=True)
    start = time.perf_counter()
    for f in range(NAIVE_FRAMES):
        armature.pose.bones[0].location = (0.0, 0.0, 0.01 * f)
        armature.pose.bones[0].keyframe_insert("location", frame=f + 1)
        for pb, q in zip(armature.pose.bones, quats[f].tolist()):
            pb.rotation_quaternion = q
            pb.keyframe_insert("rotation_quaternion", frame=f + 1)
    return (time.perf_counter() - start) * frames / NAIVE_FRAMES


def run(options: Options) -> dict:
    try:
        import bpy
    except ImportError as e:
        return {"skipped": f"no bpy module ({e}); pip install -e '.[blender]'"}
    from blender_addon import export_scene, import_capture, naming
    from blender_addon.capture_format import save_capture

    frames, repeat = options.blender_frames, options.repeat

    def fresh():
        bpy.ops.wm.read_factory_settings(use_empty=True)
        return bpy.context

    one, capture = make_capture(1), make_capture(frames)
    track = capture.tracks[0]
    result = {"bpy": bpy.app.version_string, "frames": frames, "vertices": int(len(one.tracks[0].rest_vertices))}
    result["rig_build_ms"] = ms(measure(lambda context: import_capture.import_captures([one], ["bench.npz"], context),
                                        repeat, setup=fresh))

    armature, mesh = import_capture.import_captures([one], ["bench.npz"], fresh())[0].rigs[0]
    bones = naming.bone_names(track.joint_names, track.parents, track.side)
    result["keying_ms"] = ms(measure(lambda _: import_capture.animate_track(track, armature, mesh, bones), repeat,
                                     setup=armature.animation_data_clear))
    result["naive_keying_ms"] = 1000 * naive_keying_seconds(frames)

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.npz")
        save_capture(capture, path)
        result["import_ms"] = ms(measure(lambda context: import_capture.import_files([path], context), repeat, setup=fresh))
        import_capture.import_files([path], fresh())          # the scene the exports write
        for fmt in ("fbx", "glb"):
            out = os.path.join(tmp, f"bench.{fmt}")
            result[f"{fmt}_export_ms"] = ms(measure(lambda _: export_scene.write_scene(out), repeat))
            result[f"{fmt}_bytes"] = os.path.getsize(out)
    return result


def rows(result: dict) -> list:
    if "skipped" in result:
        return [Row("blender", "rig build, keying, export", f"({result['skipped']})")]
    n = f"{result['frames']:,}"
    keying = result["keying_ms"]
    return [
        Row("blender", f"rig build (open hand, {result['vertices']} vertices, 16 bones, camera)", result["rig_build_ms"],
            reference="target 500 ms", ratio=result["rig_build_ms"]["median"] / 500.0),
        Row("blender", f"keyframes for {n} frames (16 bones x 4 + 3 root channels)", keying,
            reference=f"keyframe_insert per key {result['naive_keying_ms']:,.0f} ms",
            ratio=keying["median"] / result["naive_keying_ms"]),
        Row("blender", f"import of a {n}-frame capture file (load, build, key)", result["import_ms"]),
        Row("blender", f"FBX export of the {n}-frame scene (every frame baked)", result["fbx_export_ms"]),
        Row("blender", f"GLB export of the {n}-frame scene (every frame sampled)", result["glb_export_ms"]),
    ]
