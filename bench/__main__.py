"""``python -m bench``: run the benchmark sections, print one table, write it as Markdown and JSON."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
import traceback

from . import SECTIONS
from .common import QUICK, REPO, Options, Row, machine, value_text

DEFAULT_OUT = os.path.join(REPO, "bench", "results")


SECTION_FUNCTIONS = {        # section -> (module in bench/, its run function, its rows function)
    "engine": ("engine", "run", "rows"),
    "gpu": ("gpu", "run", "rows"),
    "blender": ("blender", "run", "rows"),
    "train": ("train", "run", "rows"),
    "accuracy": ("accuracy", "run_accuracy", "accuracy_rows"),
    "agreement": ("accuracy", "run_agreement", "agreement_rows"),
    "perception": ("perception", "run", "rows"),
    "people": ("hand_recall", "run", "rows"),
    "ray": ("scale_out", "run", "rows"),
    "live": ("live", "run", "rows"),
    "livetruth": ("live_truth", "run", "rows"),
}


def section_functions(name: str):
    """(run(options) -> result dict, rows(result) -> [Row]) of a section; its module is imported only
    now, in the section's own process."""
    module_name, run, rows = SECTION_FUNCTIONS[name]
    module = importlib.import_module(f".{module_name}", __package__)
    return getattr(module, run), getattr(module, rows)


def run_section_here(name: str, options: Options, result_path: str) -> int:
    """The worker side: run one section in this process and write its result as JSON."""
    try:
        result = section_functions(name)[0](options)
    except Exception as e:
        traceback.print_exc()
        result = {"error": f"{type(e).__name__}: {e}"}
    with open(result_path, "w") as f:
        json.dump(result, f)
    return 0


def run_section(name: str, options: Options) -> dict:
    """Run one section in a fresh Python process (no state, threads or GL/Blender context shared
    between sections); its progress goes to this terminal's stderr."""
    with tempfile.TemporaryDirectory() as tmp:
        result_path = os.path.join(tmp, "result.json")
        command = [sys.executable, "-m", "bench", "--worker", name, "--worker-options",
                   json.dumps(dataclasses.asdict(options)), "--worker-result", result_path]
        env = {**os.environ, "GLOG_minloglevel": os.environ.get("GLOG_minloglevel", "2")}
        status = subprocess.run(command, cwd=REPO, env=env, stdout=2).returncode   # its prints go to stderr
        if not os.path.isfile(result_path):
            return {"error": f"the section's process ended with status {status} and no result (see above)"}
        with open(result_path) as f:
            return json.load(f)


def rows_of(name: str, result: dict) -> list:
    if "error" in result:
        return [Row(name, "(section failed)", result["error"][:200])]
    try:
        return section_functions(name)[1](result)
    except Exception as e:            # a result the table cannot show is still kept in the JSON
        return [Row(name, "(no table rows)", f"{type(e).__name__}: {e}")]


def markdown(report: dict, rows: list) -> str:
    m = report["machine"]
    lines = [
        "# handcap benchmark",
        "",
        f"- **Date**: {report['date']}",
        f"- **Machine**: {m['cpu']}, {m['cores']} cores" + (f", {m['memory_gb']} GB" if m.get("memory_gb") else "")
        + f"; GPU: {m['gpu'] or 'none'}; Python {m['python']}, torch {m['torch']}, mediapipe {m.get('mediapipe')}, "
        f"bpy {m.get('bpy')}",
        f"- **Command**: `{report['command']}`",
        f"- Each timing: {report['settings']['warmup']} warm-up run, then the median of "
        f"{report['settings']['repeat']} runs; spread = min-max over those runs (n)."
        + (" **Quick smoke run: the numbers mean nothing.**" if report["settings"]["quick"] else ""),
        "",
        "| section | measurement | value (median) | spread | reference (peer, target) | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        value, spread = value_text(row)
        ratio = "" if row.ratio is None else f"{row.ratio:.3g}"
        cells = [row.section, row.measurement, value, spread, row.reference, ratio]
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def write_atomic(path: str, text: str) -> None:
    from training.evaluate import write_atomic as write_bytes
    write_bytes(path, text.encode())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     epilog=f"sections: {', '.join(SECTIONS)} (see bench/__init__.py)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated (default: all)")
    parser.add_argument("--repeat", type=int, default=Options.repeat, help="timed runs after the warm-up (median)")
    parser.add_argument("--frames", type=int, default=Options.frames, help="frames of the 640x480 engine video")
    parser.add_argument("--out", default=DEFAULT_OUT, help="folder for bench.md and bench.json")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, one run each")
    parser.add_argument("--accuracy-count", type=int, default=Options.accuracy_count,
                        help="held-out synthetic samples for the accuracy section")
    parser.add_argument("--blender-frames", type=int, default=Options.blender_frames,
                        help="frames keyed and exported in the Blender section")
    parser.add_argument("--train-steps", type=int, default=Options.train_steps, help="training steps per timed run")
    parser.add_argument("--real-images", default=Options.real_images, help="photos for the agreement section")
    parser.add_argument("--ge-dev", default=Options.ge_dev, help="photos with 3D truth for the livetruth section")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-options", help=argparse.SUPPRESS)
    parser.add_argument("--worker-result", help=argparse.SUPPRESS)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.worker:
        return run_section_here(args.worker, Options(**json.loads(args.worker_options)), args.worker_result)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown or not sections:
        parser.error(f"unknown section(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(SECTIONS)}")
    if args.repeat < 1 or args.frames < 2:
        parser.error("--repeat must be >= 1 and --frames >= 2")
    options = Options(repeat=args.repeat, frames=args.frames, quick=args.quick, accuracy_count=args.accuracy_count,
                      blender_frames=args.blender_frames, train_steps=args.train_steps, real_images=args.real_images,
                      ge_dev=args.ge_dev)
    if args.quick:
        options = dataclasses.replace(options, **QUICK)
    report = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": "python -m bench " + shlex.join(argv) if argv else "python -m bench",
        "machine": machine(),
        "settings": {**dataclasses.asdict(options), "warmup": 1, "sections": sections},
        "sections": {},
    }
    rows = []
    for name in sections:
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        report["sections"][name] = result = run_section(name, options)
        rows += rows_of(name, result)
    report["rows"] = [{**dataclasses.asdict(r), "text": value_text(r)[0], "spread": value_text(r)[1]} for r in rows]
    text = markdown(report, rows)
    write_atomic(os.path.join(args.out, "bench.json"), json.dumps(report, indent=1) + "\n")
    write_atomic(os.path.join(args.out, "bench.md"), text)
    print(text)
    print(f"bench: wrote {os.path.join(args.out, 'bench.md')} and bench.json", file=sys.stderr)
    return 1 if any("error" in r for r in report["sections"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
