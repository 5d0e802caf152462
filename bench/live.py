"""Live capture on this CPU: ``handcap live`` on a 640x480 video standing in for a camera, read as
the add-on reads it (``blender_addon.live_stream``): latency per frame (frame read -> record
written, the first frame left out: it pays for warm-up), frames/s of the stream, ms per frame by
stage. Every frame of a file is estimated one by one (a camera would skip frames instead), so the
frames/s is the engine's own live rate. Settings: the defaults, and a faster live setting (lite
landmarks, 10 fit steps)."""

from __future__ import annotations

import os
import statistics
import sys
import tempfile

from .common import REPO, Options, Row, stat
from .engine import HEIGHT, WIDTH, make_video

SETTINGS = {"defaults": [], "lite landmarks, 10 fit steps": ["--landmarks", "lite", "--fit-steps", "10"]}


def live_run(video: str, extra: list) -> dict:
    """One ``handcap live`` run to the end of ``video``: median latency (ms), frames/s, stage ms/frame."""
    from blender_addon.live_stream import start_live
    stream = start_live(sys.executable, video, "", ["--device", "cpu", *extra], env=dict(os.environ, PYTHONPATH=REPO))
    records = stream.wait(timeout=1800)
    if stream.error or stream.end is None:
        raise RuntimeError(stream.error or "the live engine ended without its end record")
    latencies = [r["latency_ms"] for r in records if r["type"] == "frame"][1:]
    return {"latency_ms": statistics.median(latencies), "fps": stream.end["fps"], "stages": stream.end.get("stages_ms", {}),
            "frames_with_hands": sum(bool(r.get("hands")) for r in records if r["type"] == "frame")}


def run(options: Options) -> dict:
    result = {"video": f"{WIDTH}x{HEIGHT}, {options.frames} frames (synthetic)", "settings": {}}
    with tempfile.TemporaryDirectory() as tmp:
        video = os.path.join(tmp, "live_640x480.mp4")
        make_video(video, options.frames)
        for name, extra in SETTINGS.items():
            runs = [live_run(video, extra) for _ in range(options.repeat)]
            result["settings"][name] = {
                "latency_ms": stat([r["latency_ms"] for r in runs], "ms"),
                "fps": stat([r["fps"] for r in runs], "frames/s"),
                "stages_ms": {k: statistics.median(r["stages"].get(k, 0.0) for r in runs) for k in runs[0]["stages"]},
                "frames_with_hands": runs[0]["frames_with_hands"]}
    return result


def rows(result: dict) -> list:
    out = []
    for name, s in result["settings"].items():
        where = f"{result['video']}, CPU, {name}"
        out.append(Row("live", f"handcap live: latency per frame (read -> record), {where}", s["latency_ms"], "ms"))
        out.append(Row("live", f"handcap live: frames/s, {where} ({s['frames_with_hands']} frames with a hand)", s["fps"]))
        for stage, value in s["stages_ms"].items():
            out.append(Row("live", f"handcap live, {name}: {stage}", round(value, 2), "ms/frame"))
    return out
