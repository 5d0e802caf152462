"""The `handcap` command line: demo, estimate, blend (also reachable as `python -m core`)."""

from __future__ import annotations

import argparse
import json
import os
import sys

DEFAULT_DEMO_DIR = os.path.join("out", "demo")


DEMO_PHOTO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "demo_hand.jpg")
SHARED_PHOTOS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "real_images")


def cmd_demo(args) -> int:
    """The main job on a bundled example: photo -> capture file + overlay -> rigged .blend.

    The bundled photo is a render of the open hand model made by training.synth (held-out style);
    real photos in ../shared/real_images/ are added when that folder exists."""
    from .engine.network import EngineError
    from .engine.pipeline import EngineOptions
    from .engine.run import Estimator, Progress, VideoOptions, expand_inputs
    from .hand_model.picture import make_picture

    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    inputs = [DEMO_PHOTO]
    for folder in ("freihand_eval", "in_the_wild"):
        if os.path.isdir(os.path.join(SHARED_PHOTOS, folder)):
            inputs += expand_inputs([os.path.join(SHARED_PHOTOS, folder)])
    print(f"handcap demo: estimating hands in {len(inputs)} photo(s) -> {out}")
    try:
        estimator = Estimator(EngineOptions(), VideoOptions(), out, overlay=True, progress=Progress("text"))
    except EngineError as e:
        print(f"handcap demo: {e}", file=sys.stderr)
        return 2
    try:
        outputs, failed = estimator.run(inputs)
    finally:
        estimator.close()
    print(f"  hand model picture : {make_picture(os.path.join(out, 'hand_model.png'))}")
    print(f"  capture files      : {len(outputs)} in {out} (*.npz), overlays *_overlay.png")
    capture = outputs[0] if outputs else None
    if capture is None:
        return 1
    print(f"  bundled photo      : {DEMO_PHOTO}\n  its capture        : {capture}\n"
          f"  its overlay        : {os.path.splitext(capture)[0]}_overlay.png")
    try:
        from blender_addon.convert import convert_capture
    except ImportError as e:
        print(f"  .blend             : skipped, Blender's Python module is not installed ({e});"
              " install with pip install -e '.[blender]'")
        return 1 if failed else 0
    blend_path = os.path.join(out, "demo_hand.blend")
    convert_capture(capture, blend_path)
    print(f"  Blender scene      : {blend_path} (rigged hand posed like the photo, camera with the photo behind)")
    return 1 if failed else 0


def cmd_estimate(args) -> int:
    """Photos/videos/folders -> capture files (and overlays); exit 1 if any input failed."""
    from .engine.network import EngineError
    from .engine.pipeline import EngineOptions
    from .engine.run import Estimator, InputError, Progress, VideoOptions

    progress = Progress(args.progress)
    try:
        boxes = tuple(parse_box(b) for b in args.box)
        if args.hand_model != "open":
            raise EngineError(f"--hand-model {args.hand_model}: the shipped networks are trained on the open hand "
                              "model; a network trained on MANO (training.train with network.hand_model set to "
                              "the MANO file) is needed for MANO output")
        options = EngineOptions(device=args.device, weights=args.weights, hand=args.hand, max_hands=args.max_hands,
                                refine=not args.no_refine, fit_steps=args.fit_steps, boxes=boxes, threads=args.threads,
                                landmarks=args.landmarks)
        video = VideoOptions(args.smoothing, args.frame_start, args.frame_end, args.frame_step)
        estimator = Estimator(options, video, args.output, overlay=args.overlay, focal=args.focal, K_file=args.K,
                              progress=progress)
    except (EngineError, InputError, ValueError) as e:
        progress.error(str(e))
        return 2
    try:
        outputs, failed = estimator.run(args.inputs)
    finally:
        estimator.close()
    lines = [f"  {path}" for path in outputs]
    progress.finish(outputs, failed, "\n".join([f"handcap estimate: {len(outputs)} capture file(s) in "
                                                 f"{os.path.abspath(args.output)}" + (f", {failed} input(s) failed" if failed else ""), *lines]))
    return 1 if failed else 0


def parse_box(text: str) -> tuple:
    """'x0,y0,x1,y1' (pixels) -> a tuple of 4 floats with x0 < x1, y0 < y1."""
    try:
        x0, y0, x1, y1 = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--box {text!r}: expected x0,y0,x1,y1 in pixels") from None
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"--box {text!r}: needs x0 < x1 and y0 < y1")
    return (x0, y0, x1, y1)


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

    est = sub.add_parser(
        "estimate", help="photos, videos or folders -> capture files (+ overlays)",
        description="Find the hands in photos and videos, estimate their 3D pose and shape, and write one capture "
                    "file (.npz) per input into OUT (turn it into a Blender scene with 'handcap blend' or the "
                    "add-on). A bad input gets a one-line error and the others go on; the exit code is 1 if any "
                    "input failed.")
    est.add_argument("inputs", nargs="+", metavar="INPUT", help="photos, videos, or folders of them")
    est.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder")
    est.add_argument("--overlay", action="store_true",
                     help="also write OUT/<name>_overlay.png (photos) or .mp4 (videos): mesh and keypoints drawn on")
    est.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="default: %(default)s (GPU when present)")
    est.add_argument("--weights", default=None,
                     help="network weights (.safetensors), or 'fast' / 'accurate' (shipped); default: accurate on a "
                          "GPU when shipped, else fast")
    est.add_argument("--hand-model", default="open", metavar="open|PATH",
                     help="hand model of the output: 'open' (shipped) or a MANO_RIGHT.pkl the network was trained with")
    est.add_argument("--hand", choices=["auto", "right", "left"], default="auto",
                     help="which hands to capture (auto: both); with --box, MediaPipe's landmark model tells the "
                          "side of a boxed hand, and this is the side where it cannot (auto: right)")
    est.add_argument("--max-hands", type=int, default=2, help="at most this many hands per frame (default: %(default)s)")
    est.add_argument("--landmarks", choices=["full", "lite"], default="full",
                     help="MediaPipe's landmark model: 'full' (default) or 'lite', about 6 ms per frame faster on a "
                          "2-core CPU but its landmarks, which the fit follows, are less exact")
    est.add_argument("--box", action="append", default=[], metavar="x0,y0,x1,y1",
                     help="a hand's region in pixels, used instead of detection (repeat for several hands)")
    est.add_argument("--focal", type=float, default=None,
                     help="focal length in pixels (default: 50 degrees field of view across the longer side)")
    est.add_argument("--K", default=None, metavar="FILE", help="3x3 intrinsics in pixels (.npy or text)")
    est.add_argument("--no-refine", action="store_true", help="skip fitting the hand to the 2D keypoints")
    est.add_argument("--fit-steps", type=int, default=30, help="refinement steps (default: %(default)s)")
    est.add_argument("--smoothing", type=float, default=0.5,
                     help="video: temporal smoothing from 0 (none) to 1 (strongest), zero lag (default: %(default)s)")
    est.add_argument("--frame-start", type=int, default=0, help="video: first frame, 0-based")
    est.add_argument("--frame-end", type=int, default=-1, help="video: last frame, inclusive (-1: the end)")
    est.add_argument("--frame-step", type=int, default=1, help="video: use every n-th frame")
    est.add_argument("--threads", type=int, default=0, help="CPU threads for the network (0: all cores)")
    est.add_argument("--progress", choices=["text", "json"], default="text",
                     help="'json' prints one JSON object per line (stage, done, total, message) for the add-on")
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
