"""Many clips, one machine: ``handcap estimate`` plain against ``--ray`` with 2 workers (clips/minute).

Makes CLIPS copies of the engine section's 640x480 video (``bench.engine.make_video``, half as many
frames) in one folder and times the whole command, as a user runs it (Python start, engine load,
and for Ray its local instance and the workers' engines): ``python -m core estimate DIR -o OUT``
and the same with ``--ray local --workers 2`` (1 CPU, 1 torch thread each), into a fresh OUT every
time (a Ray run skips captures already there). Runs alternate plain / Ray so that a busy machine's
drift hits both alike; the ratio is the median of the pairs' ratios.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

from .common import REPO, Options, Row, skipped, stat
from .engine import make_video

CLIPS = 8                 # clips per run (QUICK: 2)


def timed(command: list) -> float:
    """Seconds of one command, which must succeed (its output is dropped)."""
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[2:5])}... failed ({result.returncode}): {result.stderr[-500:]}")
    return seconds


def run(options: Options) -> dict:
    try:
        import ray  # noqa: F401
    except ImportError:
        return {"skipped": "ray is not installed (pip install -e '.[ray]')"}
    clips = 2 if options.quick else CLIPS
    frames = max(8, options.frames // 2)
    base = [sys.executable, "-m", "core", "estimate"]
    seconds = {"plain": [], "ray": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(tmp, "clips")
        os.makedirs(folder)
        make_video(os.path.join(folder, "clip00.mp4"), frames)
        for i in range(1, clips):
            os.link(os.path.join(folder, "clip00.mp4"), os.path.join(folder, f"clip{i:02d}.mp4"))
        commands = {"plain": lambda out: base + [folder, "-o", out],
                    "ray": lambda out: base + [folder, "-o", out, "--ray", "local", "--workers", "2"]}
        for i in range(options.repeat):
            for name, command in commands.items():
                seconds[name].append(timed(command(os.path.join(tmp, f"{name}{i}"))))
                print(f"  scale_out: {name} run {i + 1}: {seconds[name][-1]:.1f} s", file=sys.stderr, flush=True)
    per_minute = {name: stat([60 * clips / s for s in runs], "clips/min") for name, runs in seconds.items()}
    ratios = [p / r for p, r in zip(seconds["plain"], seconds["ray"])]
    return {"clips": clips, "frames": frames, "cores": os.cpu_count(), "seconds": seconds, "clips_per_minute": per_minute,
            "ray_speedup": statistics.median(ratios), "ratios": ratios}


def rows(result: dict) -> list:
    if "skipped" in result:
        return [skipped("ray", "clips/minute, plain vs --ray", result["skipped"])]
    what = f"{result['clips']} clips of 640x480, {result['frames']} frames, whole command, {result['cores']} cores"
    plain = result["clips_per_minute"]["plain"]
    return [Row("ray", f"handcap estimate, plain: {what}", plain),
            Row("ray", f"handcap estimate --ray local --workers 2: {what}", result["clips_per_minute"]["ray"],
                reference=f"plain {plain['median']:.1f} clips/min", ratio=result["ray_speedup"])]
