"""Two stages of a live stream on two cores: the perception of frame t+1 (read, decode, detect) runs
in a process of its own while frame t is fitted (network, fit, record), handed over one at a time.

A process, not a thread: both stages are Python-heavy (torch modules of small layers, the numpy fit),
and in one process they take turns on the GIL: with the fit in a second thread, detection took 77
ms per frame instead of 28 (2-core CPU; a thread running only GIL-free torch work beside it: 26).

Unlike ``core.engine.read_ahead`` (a queue that keeps a video's decoder many frames ahead, for
throughput), a live frame must not wait: at most one perceived frame is ever in flight, and the next
frame is grabbed only as late as lets its perception end when the fit of the frame before does
(grab at the fit's start + its mean time - perception's mean time). So a frame's latency is about
perception + fit, not their sum over the frames queued before it, and the rate is that of the slower
stage. A camera's newest frame is taken when the grab happens, so it is as fresh as it can be.

The child (``python -m core.engine.handoff CONFIG``) reads commands on stdin (b"g" + a float64
``time.perf_counter`` to grab at, or b"q") and answers each grab on stdout with one pickled
(index, RGB frame, read time, detections, {stage: seconds}, time detected) or None when the input has ended
(and "ready" once, before the first);
``perf_counter`` is the system's monotonic clock, the same in both processes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import struct
import subprocess
import sys
import threading
import time
from typing import Optional

_HEADER = struct.Struct("<Q")
_GRAB = struct.Struct("<cd")


class PerceptionProcess:
    """``for index, rgb, grabbed, found in PerceptionProcess(options, source, ...): fit(...)``.

    options: the EngineOptions (its detector settings are used); source: a camera index or a video
    file; pace_fps > 0 plays a file at that rate, newest frame only (``--as-camera``); camera: the
    source is a camera; width, height: the camera frame size to ask for (0: its default). Each
    perceived frame's stage seconds (decode, detect) are added to ``times`` (a StageTimes).
    """

    def __init__(self, options, source: str, pace_fps: float, camera: bool, width: int, height: int, times):
        config = {"options": dataclasses.asdict(options), "source": source, "pace_fps": pace_fps,
                  "camera": camera, "width": width, "height": height}
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in [_ROOT, os.environ.get("PYTHONPATH", "")] if p))
        self.process = subprocess.Popen([sys.executable, "-m", "core.engine.handoff", json.dumps(config)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self.times = times
        self._fit_mean = self._perceive_mean = 0.0
        if self._receive() != "ready":          # the child has loaded its detector and opened the source
            raise RuntimeError("the perception process did not start")

    def __iter__(self):
        self._grab(0.0)
        while True:
            item = self._receive()
            if item is None:
                return
            index, rgb, grabbed, found, seconds, done = item
            for stage, value in seconds.items():
                self.times.seconds[stage] += value
            self._perceive_mean = _mean(self._perceive_mean, done - grabbed)     # read -> detected, in the child
            started = time.perf_counter()
            # grab just in time: the fit of this frame ends about when the next frame's perception does
            self._grab(started + self._fit_mean - self._perceive_mean)
            yield index, rgb, grabbed, found
            self._fit_mean = _mean(self._fit_mean, time.perf_counter() - started)

    def close(self) -> None:
        """Stop the child (its stdin closed, then terminated after 2 s, then killed)."""
        try:
            self.process.stdin.write(b"q")
            self.process.stdin.close()
        except (BrokenPipeError, OSError, ValueError):
            pass
        for end in (lambda: None, self.process.terminate, self.process.kill):
            end()
            try:
                self.process.wait(2.0)
                break
            except subprocess.TimeoutExpired:
                continue
        self.process.stdout.close()

    def _grab(self, at: float) -> None:
        self.process.stdin.write(_GRAB.pack(b"g", at))
        self.process.stdin.flush()

    def _receive(self):
        header = self.process.stdout.read(_HEADER.size)
        if len(header) < _HEADER.size:
            raise RuntimeError(f"the perception process ended (exit status {self.process.poll()}); see its error above")
        return pickle.loads(_read_exactly(self.process.stdout, _HEADER.unpack(header)[0]))


def _read_exactly(stream, size: int) -> bytes:
    data = stream.read(size)
    if len(data) < size:
        raise RuntimeError("the perception process ended in the middle of a frame")
    return data


def _send(answers, item) -> None:
    data = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
    answers.write(_HEADER.pack(len(data)) + data)
    answers.flush()


def _mean(mean: float, value: float, share: float = 0.2) -> float:
    """An exponential running mean (the first value taken as it is)."""
    return value if mean == 0.0 else mean + share * (value - mean)


_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def serve(config: dict, commands, answers) -> None:
    """The child: open the source, then for each grab command read one frame, detect its hands and
    send them (see the module docstring)."""
    import cv2
    import torch

    from .live import LatestFrame, file_frames, open_source
    from .pipeline import Engine, EngineOptions
    from .run import to_rgb8

    torch.set_num_threads(1)
    options = EngineOptions(**{**config["options"], "boxes": tuple(tuple(b) for b in config["options"]["boxes"])})
    engine = Engine(options)
    detector = engine.video_detector()
    capture, _ = open_source(config["source"])
    if config["camera"] and config["width"] and config["height"]:
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, config["width"])
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, config["height"])
    stop = threading.Event()
    reader = LatestFrame(capture, config["pace_fps"]) if config["camera"] or config["pace_fps"] else None
    frames = reader.frames(stop) if reader else file_frames(capture, stop, engine.times)
    try:
        _send(answers, "ready")
        while True:
            command = commands.read(_GRAB.size)
            if len(command) < _GRAB.size or command[:1] != b"g":
                return
            at = _GRAB.unpack(command)[1]
            if at > time.perf_counter():
                time.sleep(at - time.perf_counter())
            engine.times.reset()
            item = next(frames, None)
            if item is not None:
                index, bgr, grabbed = item
                rgb = to_rgb8(bgr, config["source"]) if bgr.ndim != 3 or bgr.shape[2] != 3 else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                found = engine.detect(rgb, detector, boxes=options.boxes or None)
                item = (index, rgb, grabbed, found, dict(engine.times.seconds), time.perf_counter())
            _send(answers, item)
            if item is None:
                return
    except (BrokenPipeError, OSError):
        return
    finally:
        stop.set()
        if reader is not None:
            reader.close()
        capture.release()
        if detector is not None:
            detector.close()
        engine.close()


if __name__ == "__main__":
    _answers = os.fdopen(os.dup(1), "wb")       # the frames' channel; anything else written to stdout goes to stderr
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    serve(json.loads(sys.argv[1]), sys.stdin.buffer, _answers)
