"""Headless batch: capture files, photos or videos (or folders of them) -> .blend / .fbx / .glb.

Inside Blender::

    blender -b -P blender_addon/batch.py -- INPUT... -o DIR [--format blend|fbx|glb]

or with the bpy module (``pip install bpy``)::

    python blender_addon/batch.py INPUT... -o DIR [--format blend|fbx|glb]

Photos and videos go through the engine (``<engine python> -m core estimate``; its Python
from ``--engine-python``, $HANDCAP_PYTHON or the ``handcap`` command on PATH). Each output is
written atomically; a bad input is reported and skipped; the exit status is 1 if any failed.
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


def parse_args(argv: list) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="batch.py", description="Capture files, photos or videos -> .blend/.fbx/.glb files.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="capture files (.npz), photos, videos, or folders of them")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--format", default="blend", choices=("blend", "fbx", "glb"))
    parser.add_argument("--engine-python", default="", help="the engine's Python (photos/videos)")
    parser.add_argument("--hand", default="auto", choices=("auto", "left", "right"))
    parser.add_argument("--max-hands", type=int, default=2)
    parser.add_argument("--smoothing", type=float, default=0.5)
    parser.add_argument("--device", default="auto")
    return parser.parse_args(argv)


def main(argv: list = None) -> int:
    """Convert every input; print one line each and a summary; 0 if all succeeded, else 1."""
    if argv is None:
        argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]
    args = parse_args(argv)
    package = _package()
    convert = importlib.import_module(package.__name__ + ".convert")
    engine = importlib.import_module(package.__name__ + ".engine")
    options = engine.EstimateOptions(hand=args.hand, max_hands=args.max_hands,
                                     smoothing=args.smoothing, device=args.device)
    results = convert.convert_inputs(args.inputs, args.output, args.format, args.engine_python,
                                     options)
    failed = [r for r in results if r.error]
    print(f"handcap batch: {len(results) - len(failed)} converted, {len(failed)} failed"
          f" ({args.format} files in {os.path.abspath(args.output)})")
    for r in failed:
        print(f"  failed: {r.input}: {r.error}")
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
