"""Headless batch: capture files, photos or videos (or folders of them) -> .blend / .fbx / .glb.

Inside Blender::

    blender -b -P blender_addon/batch.py -- INPUT... -o DIR [--format blend|fbx|glb]

or with the bpy module (``pip install bpy``)::

    python blender_addon/batch.py INPUT... -o DIR [--format blend|fbx|glb]

Photos and videos go through the engine (``<engine python> -m core estimate``; its Python
from ``--engine-python``, $HANDCAP_PYTHON or the ``handcap`` command on PATH), one run per input,
or with ``--ray [ADDRESS]`` one run for all of them spread over a Ray cluster (capture files kept in
DIR/captures; Blender's Python never imports ray). Each output is
written atomically; a bad input gets one error line on stderr and is skipped. Exit codes
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


def parse_args(argv: list) -> argparse.Namespace:
    parser = _Parser(
        prog="batch.py", description="Capture files, photos or videos -> .blend/.fbx/.glb files. Exit codes: 0 every "
                                     "input converted, 1 an input failed, 2 usage error, 3 an input had no hand.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="capture files (.npz), photos, videos, or folders of them")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--format", default="blend", choices=("blend", "fbx", "glb"))
    parser.add_argument("--engine-python", default="", help="the engine's Python (photos/videos)")
    parser.add_argument("--hand", default="auto", choices=("auto", "left", "right"))
    parser.add_argument("--max-hands", type=int, default=2)
    parser.add_argument("--smoothing", type=float, default=0.5)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                        help="estimate all photos and videos in one engine run on a Ray cluster (the engine's "
                             "'handcap estimate --ray'; needs ray in the engine's Python): alone, the cluster found "
                             "or a local one; or HOST:PORT / ray://HOST:10001. Capture files are kept in "
                             "DIR/captures, so a batch run again resumes")
    parser.add_argument("--verbose", action="store_true", help="also show Blender's and the libraries' own output")
    return parser.parse_args(argv)


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
    with quiet.quiet_third_party(args.verbose):
        results = convert.convert_inputs(args.inputs, args.output, args.format, args.engine_python,
                                         options)
    failed = [r for r in results if r.error]
    without = [r for r in results if not r.error and not r.hands]
    print(f"handcap batch: {len(results) - len(failed)} converted, {len(failed)} failed"
          + (f", no hand in {len(without)}" if without else "")
          + f" ({args.format} files in {os.path.abspath(args.output)})")
    return exit_codes.exit_code(len(failed), len(without), len(results))


if __name__ == "__main__":
    sys.exit(main())
