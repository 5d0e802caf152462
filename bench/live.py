"""Live capture on this CPU: ``handcap live`` on a 640x480 video standing in for a camera, read as
the add-on reads it (``blender_addon.live_stream``): latency per frame (frame read -> record
written, the first frame left out: it pays for warm-up), frames/s of the stream, ms per frame by
stage (``refine`` is the fit). Every frame of a file is estimated one by one (a camera would skip
frames instead), so the frames/s is the engine's own live rate. Settings: the defaults, and a faster
live setting (lite landmarks, 2 fit steps). Beside them, in the same rounds (each round runs every
setting, then MediaPipe Hands alone on the same decoded frames, so a busy machine's drift hits all
alike): MediaPipe's frames/s, the reference most live Blender add-ons use. And the add-on's side:
the time to pose the live rig for one record in bpy (``LiveSession._pose``: smoothing and the bone
channels), the cost the add-on pays per record to keep up with the engine; and the add-on's Live
timer beside a running engine (``addon_follow``): rig updates/s achieved against the engine's
records/s in the same run.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time

import numpy as np

from .common import REPO, Options, Row, rate, stat
from .engine import HEIGHT, WIDTH, decoded_frames, make_video, mediapipe_run

SETTINGS = {"defaults": [], "lite landmarks, 2 fit steps": ["--landmarks", "lite", "--fit-steps", "2"]}
MEDIAPIPE = "MediaPipe Hands 0.10.21 alone (tracking mode, same frames)"


def live_run(video: str, extra: list, rig: str = "") -> dict:
    """One ``handcap live`` run to the end of ``video``: median latency (ms), frames/s, stage ms/frame,
    and its frame records."""
    from blender_addon.live_stream import start_live
    stream = start_live(sys.executable, video, rig, ["--device", "cpu", *extra], env=dict(os.environ, PYTHONPATH=REPO))
    records = stream.wait(timeout=1800)
    if stream.error or stream.end is None:
        raise RuntimeError(stream.error or "the live engine ended without its end record")
    frames = [r for r in records if r["type"] == "frame"]
    latencies = [r["latency_ms"] for r in frames][1:]
    return {"latency_ms": statistics.median(latencies), "fps": stream.end["fps"], "stages": stream.end.get("stages_ms", {}),
            "frames_with_hands": sum(bool(r.get("hands")) for r in frames), "records": frames}


def rig_update_ms(rig: str, records: list) -> dict:
    """Milliseconds to pose the live rig for one record in bpy (the add-on's LiveSession, Smoothing 0.5),
    per record of a live run; None without bpy."""
    try:
        import bpy
    except ImportError:
        return None
    import blender_addon
    from blender_addon.ops_live import LiveSession
    blender_addon.register()
    try:
        bpy.ops.wm.read_factory_settings(use_empty=True)
        session = LiveSession("bench", sys.executable)
        session._build_rigs(bpy.context, rig)
        seconds = []
        for record in records:
            start = time.perf_counter()
            session._pose(record, recording=False)
            seconds.append(time.perf_counter() - start)
        return stat([1000.0 * s for s in seconds[1:]], "ms")
    finally:
        blender_addon.unregister()


def addon_follow(video: str) -> dict:
    """The add-on's Live Capture in bpy beside a running engine: the modal timer's work simulated (its
    handler ``LiveSession.step``, then a wait of ``live_pose.timer_interval`` of the engine's measured
    rate, as ``HANDCAP_OT_live_start`` re-times its timer), on ``handcap live`` over ``video`` at the
    engine's own rate. Returns the engine's records/s, the rig updates/s achieved (ticks that showed a
    new record, over the same span), the records drained per update, and the ms of a tick that posed the
    rig; None without bpy. A viewport's redraw is not included (background mode has none)."""
    try:
        import bpy
    except ImportError:
        return None
    import blender_addon
    from blender_addon import live_pose
    from blender_addon.ops_live import LiveSession
    blender_addon.register()
    try:
        bpy.ops.wm.read_factory_settings(use_empty=True)
        session = LiveSession(video, sys.executable, ["--device", "cpu"]).start()
        updates, step_ms = [], []
        try:
            while not session.stream.finished:
                tick = time.perf_counter()
                frames = [r for r in session.step(bpy.context) if r.get("type") == "frame"]
                if frames:
                    step_ms.append(1000.0 * (time.perf_counter() - tick))
                    updates.append((tick, len(frames)))
                time.sleep(max(0.0, live_pose.timer_interval(session.stream.fps) - (time.perf_counter() - tick)))
        finally:
            session.stop(bpy.context)
        if session.stream.error or session.stream.end is None or len(updates) < 3:
            raise RuntimeError(session.stream.error or "the live engine ended without its end record")
        updates = updates[1:]                      # the first tick drains the records of the warm-up
        span = updates[-1][0] - updates[0][0]
        return {"engine_fps": float(session.stream.end["fps"]), "update_fps": (len(updates) - 1) / span,
                "records_per_update": float(np.mean([n for _, n in updates])),
                "tick_ms": stat(step_ms[1:], "ms")}
    finally:
        blender_addon.unregister()


def run(options: Options) -> dict:
    result = {"video": f"{WIDTH}x{HEIGHT}, {options.frames} frames (synthetic)", "settings": {}}
    with tempfile.TemporaryDirectory() as tmp:
        video, rig = os.path.join(tmp, "live_640x480.mp4"), os.path.join(tmp, "rig.npz")
        make_video(video, options.frames)
        rgb = decoded_frames(video)
        runs = {name: [] for name in SETTINGS}
        mediapipe = []
        for round_ in range(options.repeat):
            for name, extra in SETTINGS.items():
                runs[name].append(live_run(video, extra, rig if round_ == 0 and name == "defaults" else ""))
            seconds = mediapipe_run(rgb)
            if seconds is not None:
                mediapipe.append(seconds)
        for name, setting_runs in runs.items():
            result["settings"][name] = {
                "latency_ms": stat([r["latency_ms"] for r in setting_runs], "ms"),
                "fps": stat([r["fps"] for r in setting_runs], "frames/s"),
                "stages_ms": {k: statistics.median(r["stages"].get(k, 0.0) for r in setting_runs)
                              for k in setting_runs[0]["stages"]},
                "frames_with_hands": setting_runs[0]["frames_with_hands"]}
        if mediapipe:
            result["mediapipe"] = rate(len(rgb), mediapipe, "frames/s")
        result["rig_update_ms"] = rig_update_ms(rig, runs["defaults"][0]["records"])
        result["addon_follow"] = addon_follow(video)
    return result


def rows(result: dict) -> list:
    out, mp = [], result.get("mediapipe")
    for name, s in result["settings"].items():
        where = f"{result['video']}, CPU, {name}"
        out.append(Row("live", f"handcap live: latency per frame (read -> record), {where}", s["latency_ms"], "ms",
                       reference="target <= 50 ms (bar 80)"))
        out.append(Row("live", f"handcap live: frames/s, {where} ({s['frames_with_hands']} frames with a hand)", s["fps"],
                       reference=f"{MEDIAPIPE}: {mp['median']:.1f} frames/s; target >= 30 (bar 20)" if mp else "target >= 30 (bar 20)",
                       ratio=s["fps"]["median"] / mp["median"] if mp else None))
        for stage, value in s["stages_ms"].items():
            label = "refine (the fit)" if stage == "refine" else stage
            out.append(Row("live", f"handcap live, {name}: {label}", round(value, 2), "ms/frame"))
    if mp:
        out.append(Row("live", f"{MEDIAPIPE}, {result['video']}, CPU", mp))
    if result.get("rig_update_ms"):
        out.append(Row("live", "add-on: live rig posed for one record in bpy (LiveSession._pose, Smoothing 0.5)",
                       result["rig_update_ms"], "ms", reference="a 30 frames/s engine leaves 33 ms"))
    follow = result.get("addon_follow")
    if follow:
        out.append(Row("live", "add-on: rig updates/s achieved by the Live timer in bpy (step + timer_interval), "
                       f"{follow['records_per_update']:.2f} records drained per update", round(follow["update_fps"], 1),
                       "updates/s", reference=f"the engine's records: {follow['engine_fps']:.1f}/s in the same run",
                       ratio=follow["update_fps"] / follow["engine_fps"]))
        out.append(Row("live", "add-on: one Live timer tick that posed the rig (LiveSession.step, bpy)",
                       follow["tick_ms"], "ms"))
    return out
