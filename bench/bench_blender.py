"""Benchmark the Blender add-on's scene building (not a test): rig build and bulk keyframing.

    python bench/bench_blender.py [--frames 1000 10000] [--repeat 5]

Prints the median wall time of: building one rig (mesh, UVs, material, 16 bones, vertex groups,
armature modifier, camera) from the open hand model; keying N frames (16 bone rotations and the
root location through slotted actions + foreach_set); a whole file import at the largest N; and,
for scale, Blender's per-key ``keyframe_insert`` on a few frames, extrapolated to 1,000.
Targets (ARCHITECTURE.md): rig < 0.5 s, 10,000 frames keyed < 1 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def make_capture(frames: int):
    """The open hand with ``frames`` prior-sampled poses (core's torch layer)."""
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


def timed(fn, repeat: int, setup=None) -> float:
    """Median seconds of ``fn(setup())`` over ``repeat`` runs (setup not timed)."""
    times = []
    for _ in range(repeat):
        arg = setup() if setup is not None else None
        t = time.perf_counter()
        fn(arg)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import bpy

    from blender_addon import import_capture, naming
    from blender_addon.capture_format import save_capture

    def fresh():
        bpy.ops.wm.read_factory_settings(use_empty=True)
        return bpy.context

    one = make_capture(1)

    def build_rig(context):
        import_capture.import_captures([one], ["bench.npz"], context)

    print(f"bpy {bpy.app.version_string}, {os.cpu_count()} CPU(s)")
    print(f"rig build (open hand, {len(one.tracks[0].rest_vertices)} vertices, 16 bones, 1 frame): "
          f"{timed(build_rig, args.repeat, fresh) * 1e3:8.1f} ms   (target < 500 ms)")

    for n in args.frames:
        capture = make_capture(n)
        track = capture.tracks[0]
        context = fresh()
        armature, mesh = import_capture.import_captures([one], ["bench.npz"], context)[0].rigs[0]
        bones = naming.bone_names(track.joint_names, track.parents, track.side)

        def key(_):
            import_capture.animate_track(track, armature, mesh, bones)

        print(f"keyframing {n:6d} frames (16 bones x 4 + 3 root channels):          "
              f"{timed(key, args.repeat, armature.animation_data_clear) * 1e3:8.1f} ms"
              + ("   (target < 1000 ms)" if n == 10000 else ""))

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.npz")
        save_capture(capture, path)

        def whole_import(context):
            import_capture.import_files([path], context)

        print(f"whole import of a {args.frames[-1]}-frame capture file (load, build, key):    "
              f"{timed(whole_import, max(1, args.repeat // 2), fresh) * 1e3:8.1f} ms")

    # For scale: setting values and calling keyframe_insert per bone per frame (50 frames,
    # extrapolated to 1,000), the way a naive importer would.
    context = fresh()
    armature = import_capture.import_captures([one], ["bench.npz"], context)[0].rigs[0][0]
    armature.animation_data_clear()
    quats = np.random.default_rng(0).normal(size=(50, 16, 4))
    quats /= np.linalg.norm(quats, axis=-1, keepdims=True)
    t = time.perf_counter()
    for f in range(50):
        armature.pose.bones[0].location = (0.0, 0.0, 0.01 * f)
        armature.pose.bones[0].keyframe_insert("location", frame=f + 1)
        for pb, q in zip(armature.pose.bones, quats[f].tolist()):
            pb.rotation_quaternion = q
            pb.keyframe_insert("rotation_quaternion", frame=f + 1)
    per_1000 = (time.perf_counter() - t) * 1000 / 50
    print("for scale: keyframe_insert per bone per frame, extrapolated to 1000 frames: "
          f"{per_1000 * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
