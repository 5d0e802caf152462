"""The engine on this CPU: a 640x480 video, stage by stage, beside MediaPipe's hand tracker.

Makes a 640x480 test video (the bundled demo render of a hand gliding over a gradient, written
with OpenCV) and runs ``handcap estimate`` on it (the Estimator, as the command line does, default
settings) for each shipped model, the default (trunk) first, the default again with
MediaPipe's lite landmark model (``--landmarks lite``), and the default with per-frame results
(``--smoothing 0``) beside it with the whole-track temporal solve (the ``smooth`` stage); per stage (decode, detect, crop, network,
refine, smooth, write) the milliseconds per frame, end to end the frames/s. Beside it, on the same
decoded frames: the hand pipeline alone (detect + landmarks, handcap's torch modules, with the
engine's settings and with MediaPipe's graph exactly) and MediaPipe's hand tracker itself (when
mediapipe is installed; the reference most Blender capture add-ons use). Every runner runs once to
warm up, then ``repeat`` rounds of all runners interleaved, so the ratios to MediaPipe compare runs
made side by side on a machine whose speed drifts. The fit's quality is the mean distance (pixels)
between the fitted hand's projected keypoints and the landmarks it was fitted to, before smoothing.
The default model also runs with detection in the same process (a read-ahead thread, as before
issue 30's child process: ``core.engine.detect_process``), in the same rounds; the hand pipelines
alone report how often the palm detector ran (per frame; MediaPipe's graph runs it on every frame
while fewer hands than it looks for are tracked).
Target (the issue): CPU video >= 30 frames/s with the default settings; issue 30: end to end at least
1.1x (goal 1.3x) MediaPipe Hands alone in the same run.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

import cv2
import numpy as np

from .common import MODELS, REPO, Options, Row, ms, rate, shipped_weights, skipped

STAGES = ("decode", "detect", "crop", "network", "refine", "smooth", "write")
MEDIAPIPE = "MediaPipe Hands 0.10.21 itself"
MEDIAPIPE_GRAPH = "handcap, MediaPipe's graph exactly (palm detector every frame while < 2 hands)"
WIDTH, HEIGHT = 640, 480
LITE_MODEL = "trunk"     # also measured with MediaPipe's lite landmark model (--landmarks lite)
PER_FRAME = "per frame (--smoothing 0)"   # the default model also measured without the temporal solve
IN_PROCESS = "detection in the same process (read-ahead thread, as before #30)"   # and without the child process


def make_video(path: str, frames: int, fps: float = 30.0) -> None:
    """A hand (the bundled demo render, scaled to 280 px) gliding over a grey gradient, 640x480."""
    hand = cv2.resize(cv2.imread(os.path.join(REPO, "core", "assets", "demo_hand.jpg")), (280, 280))
    background = np.tile(np.linspace(90, 170, WIDTH, dtype=np.uint8)[None, :, None], (HEIGHT, 1, 3))
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (WIDTH, HEIGHT))
    for i in range(frames):
        frame = background.copy()
        x = int(60 + 250 * (0.5 - 0.5 * np.cos(2 * np.pi * i / frames)))
        y = int(90 + 40 * np.sin(2 * np.pi * i / frames))
        frame[y:y + 280, x:x + 280] = hand
        writer.write(frame)
    writer.release()


def engine_run(video: str, weights: str, out: str, device: str = "cpu", threads: int = 0,
               landmarks: str = "full", smoothing: float = None, detection_process: bool = None) -> dict:
    """One ``handcap estimate`` run of a video: seconds per stage, total seconds, frames estimated,
    and the fit's errors (pixels, one per hand and frame, against the landmarks it was fitted to).
    ``smoothing``: ``--smoothing`` (None: the default)."""
    from blender_addon.capture_format import load_capture
    from core.engine.pipeline import EngineOptions
    from core.engine.run import Estimator, Progress, VideoOptions

    estimator = Estimator(EngineOptions(device=device, weights=weights, threads=threads, landmarks=landmarks),
                          VideoOptions() if smoothing is None else VideoOptions(smoothing=smoothing), out,
                          progress=Progress("text"), detection_process=detection_process)
    engine, errors = estimator.engine, []
    estimate_frames = engine.estimate_frames

    def measured(frames, K, detections=None):           # the fit's 2D error, per hand (not timed)
        results = estimate_frames(frames, K, detections)
        for found, hands in zip(detections or [], results):
            errors.extend(float(np.linalg.norm(h.keypoints_2d - d.keypoints_2d, axis=1).mean())
                          for d, h in zip(found, hands) if d.keypoints_2d is not None)
        return results

    engine.estimate_frames = measured
    try:
        start = time.perf_counter()
        with open(os.devnull, "w") as devnull:
            stderr, sys.stderr = sys.stderr, devnull
            try:
                outputs, failed = estimator.run([video])
            finally:
                sys.stderr = stderr
        total = time.perf_counter() - start
        frames = load_capture(outputs[0]).tracks[0].num_frames if outputs and not failed else 0
        return {"stages": dict(engine.times.seconds), "total": total, "frames": frames, "fit_errors": errors}
    finally:
        estimator.close()


def decoded_frames(video: str) -> list:
    capture, frames = cv2.VideoCapture(video), []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    capture.release()
    return frames


PALM_RUNS = {}     # runner name -> palm-detector runs per frame of its last run (handcap_detect_run)


def handcap_detect_run(frames: list, palm_every: int, landmarks: str = "full", name: str = "") -> float:
    """handcap's hand pipeline (core.perception, torch) alone on decoded frames, tracking as the engine
    does for a video (one torch thread, as beside the network): seconds. ``palm_every`` 1 is MediaPipe's
    graph exactly; the engine's default looks for more hands every VIDEO_PALM_EVERY frames."""
    import torch
    from core.engine.detect import HandDetector

    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, threads - 1))
    try:
        with HandDetector(max_hands=2, video=True, landmarks=landmarks, palm_every=palm_every) as detector:
            start = time.perf_counter()
            for rgb in frames:
                detector.detect(rgb)
            seconds = time.perf_counter() - start
            PALM_RUNS[name] = detector._tracker.palm_runs / len(frames)
            return seconds
    finally:
        torch.set_num_threads(threads)


def mediapipe_run(frames: list) -> float:
    """MediaPipe Hands 0.10.21 itself (tracking mode, the full models, as the engine used it before it
    ran them in torch) alone on decoded frames: seconds; None when mediapipe is not installed."""
    try:
        import mediapipe as mp
    except ImportError:
        return None
    with mp.solutions.hands.Hands(static_image_mode=False, max_num_hands=2, model_complexity=1,
                                  min_detection_confidence=0.3, min_tracking_confidence=0.5) as hands:
        start = time.perf_counter()
        for rgb in frames:
            hands.process(rgb)
        return time.perf_counter() - start


def run(options: Options) -> dict:
    """Every runner (each model end to end, the hand pipelines alone, MediaPipe) once to warm up, then
    ``repeat`` rounds of all of them interleaved, so that a busy machine's drift hits all alike and the
    ratios to MediaPipe compare runs made side by side."""
    frames, repeat = options.frames, options.repeat
    result = {"video": f"{WIDTH}x{HEIGHT}, {frames} frames (synthetic)", "device": "cpu", "models": {}, "detect": {}}
    with tempfile.TemporaryDirectory() as tmp:
        video = os.path.join(tmp, "bench_640x480.mp4")
        make_video(video, frames)
        rgb = decoded_frames(video)
        from core.engine.detect import VIDEO_PALM_EVERY
        engines = {}
        for name, landmarks, smoothing, process in ([(model, "full", None, None) for model in MODELS]
                                                    + [(LITE_MODEL, "lite", None, None), (MODELS[0], "full", 0.0, None),
                                                       (MODELS[0], "full", None, False)]):
            weights = shipped_weights(name)
            if landmarks == "lite":
                name = f"{name}, lite landmarks"
            if smoothing is not None:
                name = f"{name}, {PER_FRAME}"
            if process is False:
                name = f"{name}, {IN_PROCESS}"
            if weights is None:
                result["models"][name] = {"skipped": "no weights"}
                continue
            engines[name] = (weights, landmarks, smoothing, process)
        ENGINE_DETECT = f"handcap, palm detector every {VIDEO_PALM_EVERY} frames while tracking (engine)"
        detectors = {ENGINE_DETECT:
                     lambda: handcap_detect_run(rgb, VIDEO_PALM_EVERY, name=ENGINE_DETECT),
                     MEDIAPIPE_GRAPH: lambda: handcap_detect_run(rgb, 1, name=MEDIAPIPE_GRAPH),
                     MEDIAPIPE: lambda: mediapipe_run(rgb)}
        for name, (weights, landmarks, smoothing, process) in engines.items():               # warm-up
            engine_run(video, weights, os.path.join(tmp, "warmup"), landmarks=landmarks, smoothing=smoothing,
                       detection_process=process)
        detectors = {name: run_once for name, run_once in detectors.items() if run_once() is not None}
        runs = {name: [] for name in engines}
        seconds = {name: [] for name in detectors}
        for i in range(repeat):
            for name, (weights, landmarks, smoothing, process) in engines.items():
                runs[name].append(engine_run(video, weights, os.path.join(tmp, f"{i}"), landmarks=landmarks,
                                             smoothing=smoothing, detection_process=process))
            for name, run_once in detectors.items():
                seconds[name].append(run_once())
        for name, model_runs in runs.items():
            done = model_runs[0]["frames"] or frames
            result["models"][name] = {
                "weights": os.path.relpath(engines[name][0], REPO), "frames": done,
                "stages_ms_per_frame": {s: ms([r["stages"].get(s, 0.0) / done for r in model_runs]) for s in STAGES},
                "fps": rate(done, [r["total"] for r in model_runs], "frames/s"),
                "fit_error_px": float(np.mean(model_runs[0]["fit_errors"])) if model_runs[0]["fit_errors"] else None,
            }
        for name, runs_s in seconds.items():
            result["detect"][name] = {"ms_per_frame": ms([s / len(rgb) for s in runs_s]),
                                      "fps": rate(len(rgb), runs_s, "frames/s")}
            if name in PALM_RUNS:
                result["detect"][name]["palm_runs_per_frame"] = PALM_RUNS[name]
        mp = result["detect"].get(MEDIAPIPE)
        if mp:
            result["mediapipe"] = {"fps": mp["fps"]}
    return result


def rows(result: dict) -> list:
    out, mp = [], result.get("mediapipe", {}).get("fps")
    for name, model in result["models"].items():
        if "skipped" in model:
            out.append(skipped("engine", f"{name}: end to end, {result['video']}", model["skipped"]))
            continue
        solved = result["models"].get(name.replace(f", {PER_FRAME}", ""), {}).get("fps")
        if name.endswith(PER_FRAME) and solved:          # beside the same model with the temporal solve
            out.append(Row("engine", f"{name}: end to end, {result['video']}, CPU", model["fps"],
                           reference=f"with the temporal solve {solved['median']:.1f} frames/s",
                           ratio=model["fps"]["median"] / solved["median"]))
        else:
            ratio = model["fps"]["median"] / mp["median"] if mp else None
            out.append(Row("engine", f"{name}: end to end, {result['video']}, CPU", model["fps"],
                           reference=f"MediaPipe Hands alone {mp['median']:.1f} frames/s" if mp else "", ratio=ratio))
        for stage, value in model["stages_ms_per_frame"].items():
            out.append(Row("engine", f"{name}: {stage}", value, "ms/frame"))
        if model.get("fit_error_px") is not None:
            out.append(Row("engine", f"{name}: fit error (fitted keypoints vs landmarks)", model["fit_error_px"], "px"))
    mp_detect = result.get("detect", {}).get(MEDIAPIPE)
    for name, detect in result.get("detect", {}).items():
        if name == MEDIAPIPE:
            continue
        ratio = mp_detect["ms_per_frame"]["median"] / detect["ms_per_frame"]["median"] if mp_detect else None
        out.append(Row("engine", f"detect + landmarks alone, {name}, tracking, 640x480, CPU", detect["ms_per_frame"],
                       "ms/frame", reference=f"MediaPipe {mp_detect['ms_per_frame']['median']:.1f} ms/frame (speed ratio)"
                       if mp_detect else "", ratio=ratio))
        if "palm_runs_per_frame" in detect:
            out.append(Row("engine", f"palm detector runs per frame, {name} (one hand in view, 2 looked for)",
                           round(detect["palm_runs_per_frame"], 3), "per frame",
                           reference="MediaPipe's graph: 1 per frame while fewer hands than max_num_hands are tracked"))
    if mp:
        out.append(Row("engine", "MediaPipe Hands alone (tracking mode, same frames)", mp))
    return out
