"""``handcap live``: a camera (or a video file standing in for one) in, one JSON record per frame out.

The engine runs frame by frame as ``handcap estimate VIDEO`` does (the detector in tracking mode,
the network and the fit on each frame's hands), but writes each frame's hands at once instead of a
capture file at the end, so a viewer (the Blender add-on's Live Capture, or any program) can follow
the hand as it moves. Nothing is smoothed here: a live reader smooths causally itself.

Records (one JSON object per stdout line, docs/live.md):
  ``{"type": "start", "version", "source", "width", "height", "fps", "K", "hand_model", "rig"}``
  ``{"type": "frame", "frame", "time", "latency_ms", "fps", "hands": [{"side", "confidence",
     "source", "pose" (16x3), "transl" (3), "betas" (B), "joints_3d" (21x3), "keypoints_2d" (21x2)}]}``
  ``{"type": "end", "frames", "reason", "mean_latency_ms", "fps", "stages_ms"}`` (ms per frame by stage)
``rig`` is the path of a capture file holding one rest-pose frame per side (``--rig``), from which
a reader builds its rigs with the ordinary capture-file code; null without ``--rig``. A camera is
read on a thread of its own and only its newest frame is estimated (``LatestFrame``): a slow engine
skips frames rather than lagging ever further; a video file gives every frame, in order, unless
``--as-camera`` plays it at its frame rate like a camera.

It ends when the input ends, when stdin is a pipe and it is closed (the add-on's Stop), on SIGTERM
or Ctrl-C, or after ``--max-frames``; each way writes the ``end`` record and releases the camera.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import sys
import threading
import time
from typing import Optional, TextIO

import cv2
import numpy as np
import torch

from core.capture import Capture, save_capture

from .handoff import PerceptionProcess
from .pipeline import Engine, EngineOptions, HandEstimate
from .inputs import check_live_source
from .run import InputError, TrackBuilder, check_size, intrinsics, torch_threads

RECORD_VERSION = 1
CAMERA_FPS = 30.0          # assumed when a camera reports no frame rate


@dataclasses.dataclass
class LiveOptions:
    source: str                       # a camera index ("0") or a video file
    max_frames: int = 0               # 0: until the input ends or the reader stops it
    focal: Optional[float] = None     # pixels; default: the 50 degree view (core.capture.default_intrinsics)
    K_file: Optional[str] = None
    rig_path: Optional[str] = None    # write the rest-pose rig capture file here
    width: int = 0                    # camera only: ask for this frame size (0: the camera's default)
    height: int = 0
    as_camera: bool = False           # a video file played at its frame rate, newest frame only, as a camera


def open_source(source: str) -> tuple[cv2.VideoCapture, bool]:
    """(an opened cv2.VideoCapture, whether it is a camera). A whole number that is not an existing
    file is a camera index; anything else must be a readable video file (InputError otherwise)."""
    is_camera = check_live_source(source)
    capture = cv2.VideoCapture(int(source)) if is_camera else cv2.VideoCapture(source)
    if not capture.isOpened():
        capture.release()
        raise InputError(f"camera {source}: cannot be opened (no such camera, or it is in use)" if is_camera
                         else f"{source}: not a readable video (corrupt or unsupported codec)")
    return capture, is_camera


def watch_stdin(stop: threading.Event) -> None:
    """When stdin is a pipe, a daemon thread sets ``stop`` once it is closed (the reader's Stop).
    A terminal or /dev/null is not watched (Ctrl-C and SIGTERM stop the stream there)."""
    try:
        fd = sys.stdin.fileno()
        mode = os.fstat(fd).st_mode
    except (OSError, ValueError, AttributeError):
        return
    if not stat.S_ISFIFO(mode):
        return

    def wait_for_eof():            # os.read, not sys.stdin: a thread blocked in a buffered read aborts exit
        try:
            while os.read(fd, 4096):
                pass
        except (OSError, ValueError):
            pass
        stop.set()

    threading.Thread(target=wait_for_eof, daemon=True, name="handcap-stdin").start()


class LatestFrame:
    """A camera read continuously on a thread of its own; ``frames`` yields only the newest frame each
    time the engine is ready, so a slow engine skips frames instead of falling ever further behind
    (the record's ``frame`` numbers the camera's frames, skipped ones included)."""

    def __init__(self, capture: cv2.VideoCapture, pace_fps: float = 0.0):
        self.capture = capture
        self.pace_fps = pace_fps                 # > 0: a video file read no faster than it plays (--as-camera)
        self.latest = None                       # (index, bgr, perf_counter when read)
        self.ended = False
        self.changed = threading.Condition()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True, name="handcap-camera")
        self.thread.start()

    def _read(self) -> None:
        index, started = -1, time.perf_counter()
        while not self._stop.is_set():
            if self.pace_fps > 0:
                time.sleep(max(0.0, started + (index + 1) / self.pace_fps - time.perf_counter()))
            ok, bgr = self.capture.read()
            with self.changed:
                if not ok or bgr is None or bgr.size == 0:
                    self.ended = True
                    self.changed.notify_all()
                    return
                index += 1
                self.latest = (index, bgr, time.perf_counter())
                self.changed.notify_all()

    def frames(self, stop: threading.Event):
        last = -1
        while not stop.is_set():
            with self.changed:
                while not self.ended and (self.latest is None or self.latest[0] == last) and not stop.is_set():
                    self.changed.wait(0.1)
                if self.latest is None or self.latest[0] == last:
                    return
                item = self.latest
            last = item[0]
            yield item

    def close(self) -> None:
        self._stop.set()
        self.thread.join(2.0)


def hand_record(hand: HandEstimate) -> dict:
    """One hand of a frame as plain JSON numbers (metres, pixels, radians; camera space, OpenCV axes)."""
    def rounded(a, digits):
        return np.round(np.asarray(a, np.float64), digits).tolist()
    return {"side": hand.side, "confidence": round(float(hand.score), 4), "source": hand.source,
            "pose": rounded(hand.pose, 6), "transl": rounded(hand.transl, 6), "betas": rounded(hand.betas, 5),
            "joints_3d": rounded(hand.joints_3d, 6), "keypoints_2d": rounded(hand.keypoints_2d, 2)}


class LiveRunner:
    """Loads the engine once; ``run`` streams one source until it ends or ``stop`` is set."""

    def __init__(self, options: EngineOptions):
        self.engine = Engine(options)
        self.options = options

    def close(self) -> None:
        self.engine.close()

    def run(self, live: LiveOptions, out: TextIO = sys.stdout, stop: Optional[threading.Event] = None) -> int:
        """Stream ``live.source`` to ``out``; returns the number of frames written."""
        stop = stop or threading.Event()
        capture, is_camera = open_source(live.source)          # checked here; the perception process reads it
        fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
        fps = fps if np.isfinite(fps) and 0 < fps <= 10_000 else CAMERA_FPS
        capture.release()
        paced = live.as_camera and not is_camera
        stream = PerceptionProcess(self.options, live.source, fps if paced else 0.0, is_camera, live.width, live.height,
                                   self.engine.times)
        frames, latencies, reason, started = 0, [], "input ended", time.perf_counter()
        try:
            K = None
            with torch_threads(self.options.threads or _default_threads()):
                is_camera = is_camera or paced
                for index, rgb, grabbed, found in stream:
                    if stop.is_set():
                        break
                    if live.max_frames and frames >= live.max_frames:
                        reason = "max frames"
                        break
                    if K is None:
                        height, width = rgb.shape[:2]
                        check_size(live.source, width, height, "frame")
                        K = intrinsics(width, height, live.focal, live.K_file)
                        self._start(out, live, width, height, fps, K)
                    hands = self.engine.estimate_frames([rgb], K, [found])[0]
                    latency = 1000.0 * (time.perf_counter() - grabbed)
                    latencies.append(latency)
                    frames += 1
                    elapsed = time.perf_counter() - started
                    try:
                        _write(out, {"type": "frame", "frame": index,
                                     "time": round(grabbed - started if is_camera else index / fps, 4),
                                     "latency_ms": round(latency, 2), "fps": round(frames / max(elapsed, 1e-9), 2),
                                     "hands": [hand_record(h) for h in hands]})
                    except (BrokenPipeError, OSError):      # the reader has gone: nothing to stream to
                        reason = "reader gone"
                        break
            if stop.is_set():
                reason = "stopped"
        except (SystemExit, KeyboardInterrupt):
            reason = "stopped"
            raise
        finally:
            elapsed = time.perf_counter() - started
            stream.close()
            _write(out, {"type": "end", "frames": frames, "reason": reason,
                         "mean_latency_ms": round(float(np.mean(latencies)), 2) if latencies else None,
                         "fps": round(frames / max(elapsed, 1e-9), 2),
                         "stages_ms": {k: round(1000 * v / max(frames, 1), 2) for k, v in self.engine.times.seconds.items()}},
                   quiet=True)
        return frames

    def _start(self, out: TextIO, live: LiveOptions, width: int, height: int, fps: float, K: np.ndarray) -> None:
        """The ``start`` record, after writing the rig file when one is asked for."""
        if live.rig_path:
            write_rig(self.engine, live.rig_path, K, width, height, fps, live.source)
        _write(out, {"type": "start", "version": RECORD_VERSION, "source": live.source, "width": width,
                     "height": height, "fps": round(fps, 4), "K": np.asarray(K, np.float64).round(4).tolist(),
                     "hand_model": self.engine.network.config.hand_model,
                     "rig": os.path.abspath(live.rig_path) if live.rig_path else None})


def file_frames(capture, stop: threading.Event, times):
    """(index, BGR frame, perf_counter when it was read) of every frame of a video file, in order (its
    decoding timed in ``times``, a StageTimes)."""
    index = -1
    while not stop.is_set():
        grabbed = time.perf_counter()
        with times("decode"):
            ok, bgr = capture.read()
        if not ok or bgr is None or bgr.size == 0:
            return
        index += 1
        yield index, bgr, grabbed


def write_rig(engine: Engine, path: str, K: np.ndarray, width: int, height: int, fps: float, source: str) -> str:
    """A capture file with one frame per side: the mean-shape hand at rest (pose 0, transl 0). A live
    reader builds its rigs from it; each frame's wrist then goes where the record's joints_3d[0] is."""
    builder = TrackBuilder(engine.network.config.hand_model, engine.device)
    betas = np.zeros(engine.layer.model.shapedirs.shape[-1], np.float32)
    tracks = []
    for side in ("right", "left"):
        rest = HandEstimate(side=side, score=1.0, box=np.zeros(4), pose=np.zeros((16, 3), np.float32), betas=betas,
                            transl=np.zeros(3, np.float32), joints_3d=np.zeros((21, 3), np.float32),
                            keypoints_2d=np.zeros((21, 2), np.float32))
        tracks.append(builder.build(side, [0], [rest], K, 0.0, 0.0))
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    save_capture(Capture(hand_model=builder.layers["right"].model.name, source_path=source,
                         image_size=np.array([width, height]), K=K, fps=fps, tracks=tracks), path)
    return path


def _default_threads() -> int:
    """One core fewer than torch's default (left to decoding and the detector), as videos run."""
    return max(1, torch.get_num_threads() - 1)


def _write(out: TextIO, record: dict, quiet: bool = False) -> None:
    """One record, one line, flushed at once (the reader is waiting for it)."""
    try:
        out.write(json.dumps(record, separators=(",", ":")) + "\n")
        out.flush()
    except (BrokenPipeError, ValueError, OSError):
        if not quiet:
            raise
