"""The `handcap` command line: demo, estimate, blend (also reachable as `python -m core`)."""

from __future__ import annotations

import argparse
import json
import os
import sys

DEFAULT_DEMO_DIR = os.path.join("out", "demo")


def cmd_demo(args) -> int:
    """Until the estimation engine lands: show the hand model and make a rigged, animated .blend from it."""
    import numpy as np
    import torch

    from .capture import Capture, default_intrinsics, save_capture, track_from_layer
    from .hand_model import HandLayer, PosePrior, load_hand_model
    from .hand_model.picture import make_picture

    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    print("handcap demo: the photo/video estimation engine is not in this release yet;")
    print("this demo shows the open hand model and turns an animated hand into a Blender scene.")
    picture = make_picture(os.path.join(out, "hand_model.png"))
    print(f"  hand model picture : {picture}")

    model = load_hand_model("open", "right")
    prior = PosePrior(model)
    generator = torch.Generator().manual_seed(0)
    keys = prior.sample(4, generator)                                   # (4, 16, 3) key poses
    keys[:, 0] = torch.tensor([np.pi, 0.0, 0.0])                        # fingers up in the image (y down)
    frames_per_key, fps = 24, 24.0
    weights = torch.linspace(0, 1, frames_per_key + 1)[:-1]
    pose = torch.cat([(1 - w) * keys[i] + w * keys[(i + 1) % 4] for i in range(4) for w in weights[:, None, None]])
    pose = pose.reshape(-1, 16, 3).numpy()
    transl = np.tile(np.array([0.0, 0.08, 0.55], np.float32), (len(pose), 1))  # 55 cm in front of the camera
    width, height = 640, 480
    K = default_intrinsics(width, height)
    track = track_from_layer(HandLayer(model), np.zeros(10, np.float32), pose, transl, K)
    capture_path = os.path.join(out, "demo_capture.npz")
    save_capture(Capture(hand_model=model.name, source_path="", image_size=np.array([width, height]), K=K,
                         fps=fps, tracks=[track]), capture_path)
    print(f"  capture file       : {capture_path} ({len(pose)} frames at {fps:g} fps)")
    try:
        from blender_addon.convert import convert_capture
    except ImportError as e:
        print(f"  .blend             : skipped, Blender's Python module is not installed ({e});"
              " install with pip install -e '.[blender]'")
        return 0
    blend_path = os.path.join(out, "demo_hand.blend")
    convert_capture(capture_path, blend_path)
    print(f"  Blender scene      : {blend_path} (rigged hand, keyframed, camera matching the capture)")
    return 0


def cmd_estimate(args) -> int:
    """Photos/videos -> capture files. The engine lands with the inference-engine issue."""
    message = "the estimation engine (photo/video -> capture file) is not available in this release yet"
    if args.progress == "json":
        print(json.dumps({"stage": "error", "done": 0, "total": 0, "message": message}), flush=True)
    print(f"handcap estimate: {message}", file=sys.stderr)
    return 2


def cmd_blend(args) -> int:
    """Capture file(s) -> .blend / .fbx / .glb with the bpy module, in this process."""
    try:
        from blender_addon.convert import convert_many
    except ImportError as e:
        print(f"handcap blend: Blender's Python module is needed: pip install -e '.[blender]' ({e})", file=sys.stderr)
        return 2
    return convert_many(args.captures, args.output)


def cmd_addon_zip(args) -> int:
    """Build the installable Blender extension zip."""
    from .addon_package import build_addon_zip
    try:
        path = build_addon_zip(args.output)
    except RuntimeError as e:
        print(f"handcap addon-zip: {e}", file=sys.stderr)
        return 1
    print(f"{path}\ninstall it in Blender: Edit > Preferences > Get Extensions > Install from Disk...")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="handcap",
        description="3D hand capture from RGB photos and video, delivered as a Blender add-on.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="run the main job on a bundled example and say where the outputs are")
    demo.add_argument("--out", default=DEFAULT_DEMO_DIR, help="output folder (default: %(default)s)")
    demo.set_defaults(func=cmd_demo)

    est = sub.add_parser("estimate", help="photos or videos -> capture files (engine not in this release yet)")
    est.add_argument("inputs", nargs="+", metavar="INPUT", help="photos, videos or folders")
    est.add_argument("-o", "--output", required=True, help="output folder for capture files")
    est.add_argument("--progress", choices=["text", "json"], default="text",
                     help="'json' prints one JSON object per line (stage, done, total, message)")
    est.set_defaults(func=cmd_estimate)

    blend = sub.add_parser("blend", help="capture file(s) -> .blend, .fbx or .glb (chosen by the extension of OUT)")
    blend.add_argument("captures", nargs="+", metavar="CAPTURE", help="capture files (.npz)")
    blend.add_argument("-o", "--output", required=True, metavar="OUT",
                       help="OUT.blend|.fbx|.glb for one capture, or a folder (one .blend each)")
    blend.set_defaults(func=cmd_blend)

    addon = sub.add_parser("addon-zip", help="build the installable Blender extension zip")
    addon.add_argument("-o", "--output", default="dist", help="output folder (default: %(default)s)")
    addon.set_defaults(func=cmd_addon_zip)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
