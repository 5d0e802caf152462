"""Headless batch: capture files, photos or videos (or folders of them) -> .blend / .fbx / .glb.

Inside Blender::

    blender -b -P blender_addon/batch.py -- INPUT... -o DIR [--format blend|fbx|glb]
    blender -b -P blender_addon/batch.py -- INPUT... -o DIR --rig RIG.blend [--armature NAME]
    blender -b -P blender_addon/batch.py -- --views VIEW1 VIEW2 [...] --cameras CAMERAS.json -o DIR

or with the bpy module (``pip install bpy``)::

    python blender_addon/batch.py INPUT... -o DIR [--format blend|fbx|glb]

Photos and videos go through the engine (``<engine python> -m core estimate``; its Python
from ``--engine-python``, the installed extension's Engine Python (Install Engine sets it),
$HANDCAP_PYTHON or the ``handcap`` command on PATH), one run per input,
or with ``--ray [ADDRESS]`` one run for all of them spread over a Ray cluster (capture files kept in
DIR/captures; Blender's Python never imports ray). With ``--views`` the views (photos of one instant,
or videos filmed together) and their cameras file go through one engine run (``core estimate --views``)
into one output named after the first view, with a camera per view. Each output is written atomically; a bad input
gets one error line on stderr and is skipped. With ``--rig`` each output is RIG.blend's character
with the input's hands retargeted onto it (``retarget.headless``). Exit codes
(``exit_codes``): 0 all converted, 1 an input failed, 2 usage error, 3 an input had no hand.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys


def _package():
    """The add-on package, whether this file runs as its module or as a script."""
    if __package__:
        return importlib.import_module(__package__)
    here = os.path.dirname(os.path.abspath(__file__))
    parent = os.path.dirname(here)
    if parent not in sys.path:
        sys.path.insert(0, parent)
    return importlib.import_module(os.path.basename(here))


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr, exit code 2 (``exit_codes.USAGE``)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def installed_engine_python() -> str:
    """The engine that Install Engine set up for the installed extension (its Engine Python
    preference), so that ``blender -b -P .../batch.py`` uses it as the panel does; '' when the
    extension is not installed in this Blender (the bpy module) or has no engine set."""
    try:
        import bpy
        addons = bpy.context.preferences.addons
    except (ImportError, AttributeError):
        return ""
    for name in addons.keys():
        if name == "handcap" or name.endswith(".handcap"):
            return getattr(addons[name].preferences, "engine_python", "") or ""
    return ""


def parse_args(argv: list) -> argparse.Namespace:
    parser = _Parser(
        prog="batch.py", description="Capture files, photos or videos -> .blend/.fbx/.glb files. Exit codes: 0 every "
                                     "input converted, 1 an input failed, 2 usage error, 3 an input had no hand.")
    parser.add_argument("inputs", nargs="*", metavar="INPUT",
                        help="capture files (.npz), photos, videos, or folders of them")
    parser.add_argument("--views", nargs="+", default=None, metavar="VIEW",
                        help="instead of INPUTs: two or more photos of one instant, or videos filmed together, "
                             "estimated together into one output named after the first (needs --cameras)")
    parser.add_argument("--cameras", default="", metavar="CAMERAS.json",
                        help="with --views: the views' cameras, one {K, R, t} per view in their order "
                             "(handcap calibrate writes it)")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--format", default="blend", choices=("blend", "fbx", "glb"))
    parser.add_argument("--engine-python", default="", help="the engine's Python (photos/videos)")
    parser.add_argument("--hand", default="auto", choices=("auto", "left", "right"),
                        help="which hands to capture, and with --rig to put on the rig (auto: both, or the side "
                             "the rig has)")
    parser.add_argument("--max-hands", type=int, default=0, help="at most this many hands per photo or frame "
                        "(default 0: every hand of a photo, 2 per video frame)")
    parser.add_argument("--smoothing", type=float, default=0.5)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--rig", default="", metavar="RIG.blend",
                        help="put each input's hands on the armature in RIG.blend instead (see handcap retarget); "
                             "--format blend or fbx")
    parser.add_argument("--armature", default="", metavar="NAME", help="with --rig: the armature to animate")
    parser.add_argument("--mapping", default="", metavar="PRESET.json", help="with --rig: a bone mapping preset")
    parser.add_argument("--wrist-rotation", action="store_true", help="with --rig: also turn the hand bone")
    parser.add_argument("--wrist-location", action="store_true", help="with --rig: also move the hand bone")
    parser.add_argument("--metacarpal-share", type=float, default=0.0,
                        help="with --rig: share of each knuckle's turn the metacarpals take (0..1)")
    parser.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                        help="estimate all photos and videos in one engine run on a Ray cluster (the engine's "
                             "'handcap estimate --ray'; needs ray in the engine's Python): alone, the cluster found "
                             "or a local one; or HOST:PORT / ray://HOST:10001. Capture files are kept in "
                             "DIR/captures, so a batch run again resumes")
    parser.add_argument("--verbose", action="store_true", help="also show Blender's and the libraries' own output")
    args = parser.parse_args(argv)
    if args.views is None and not args.inputs:
        parser.error("give INPUTs, or --views VIEW1 VIEW2 ... --cameras CAMERAS.json")
    if args.views is not None and args.inputs:
        parser.error(f"give INPUTs or --views, not both (INPUT {args.inputs[0]!r} with --views)")
    if args.views is not None and not args.cameras:
        parser.error("--views needs --cameras CAMERAS.json")
    if args.cameras and args.views is None:
        parser.error("--cameras goes with --views")
    if args.views is not None and args.ray is not None:
        parser.error("--views runs one engine on its views: leave out --ray")
    if args.rig and args.format not in ("blend", "fbx"):
        parser.error("--rig writes .blend or .fbx files: use --format blend or fbx")
    if args.rig and not os.path.isfile(args.rig):
        parser.error(f"--rig {args.rig}: no such file")
    if not 0.0 <= args.metacarpal_share <= 1.0:
        parser.error(f"--metacarpal-share {args.metacarpal_share} is out of range (0..1)")
    return args


def main(argv: list = None) -> int:
    """Convert every input; print one line each and a summary (errors on stderr); the exit code
    follows ``exit_codes``."""
    if argv is None:
        argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]
    args = parse_args(argv)
    package = _package()
    exit_codes = importlib.import_module(package.__name__ + ".exit_codes")
    output_files = importlib.import_module(package.__name__ + ".output_files")
    quiet = importlib.import_module(package.__name__ + ".quiet")
    try:
        output_files.check_writable_folder(args.output)
    except output_files.FolderError as e:
        print(f"batch.py: error: {e}", file=sys.stderr)
        return exit_codes.USAGE
    convert = importlib.import_module(package.__name__ + ".convert")
    engine = importlib.import_module(package.__name__ + ".engine")
    options = engine.EstimateOptions(hand=args.hand, max_hands=args.max_hands,
                                     smoothing=args.smoothing, device=args.device, ray=args.ray)
    job = None
    if args.rig:
        headless = importlib.import_module(package.__name__ + ".retarget.headless")
        transfer = importlib.import_module(package.__name__ + ".retarget.bone_transfer")
        job = headless.RetargetJob(os.path.abspath(args.rig), args.armature, args.mapping, transfer.TransferOptions(
            args.wrist_rotation, args.wrist_location, args.metacarpal_share), hand=args.hand)
    engine_python = args.engine_python or installed_engine_python()
    with quiet.quiet_third_party(args.verbose):
        if args.views is not None:
            results = [convert.convert_views(args.views, args.cameras, args.output, args.format, engine_python,
                                             options, retarget=job)]
        else:
            results = convert.convert_inputs(args.inputs, args.output, args.format, engine_python,
                                             options, retarget=job)
    failed = [r for r in results if r.error]
    without = [r for r in results if not r.error and not r.hands]
    print(f"handcap batch: {len(results) - len(failed)} converted, {len(failed)} failed"
          + (f", no hand in {len(without)}" if without else "")
          + f" ({args.format} files in {os.path.abspath(args.output)})")
    return exit_codes.exit_code(len(failed), len(without), len(results))


if __name__ == "__main__":
    sys.exit(main())
