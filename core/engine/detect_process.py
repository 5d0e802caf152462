"""``handcap estimate`` on a video: decoding and detection in a child process, so that on a
multi-core CPU the network and the fit of one chunk of frames overlap the detection of the next.

Why a process and not the read-ahead thread used before (``core.engine.read_ahead``): both stages
are Python-heavy (torch modules of small layers, the numpy fit) and in one process they take turns
on the GIL; the live engine met the same (``core.engine.handoff``). On 2 cores, 640x480, one hand:
detection about 15 ms per frame, network + fit + the rest about 6 ms; in one process a frame cost
about their sum (20.5 ms), in two about the larger (see docs/benchmarks.md for the measured rows).

The child (``python -m core.engine.detect_process OPTIONS``) is started once per Estimator and kept:
it loads its networks while the parent loads its own, and says "ready" once. It reads jobs on stdin (one pickled
(path, VideoOptions) per video) and answers each with pickled items on stdout:
``("frame", index, rgb, detections, {stage: seconds})`` per frame, then ``("end",)``, or
``("error", message)`` (an InputError's text) or ``("failed", text)`` (any other exception). The
same ``core.engine.run.detected_frames`` runs in both places, so the detections are the same. A video
left before its end (an error in the parent, Ctrl-C) stops the child; the next video starts a new one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import struct
import subprocess
import sys
from typing import Iterator

_HEADER = struct.Struct("<Q")
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class DetectionProcess:
    """``for index, rgb, found in DetectionProcess(options).frames(path, video_options, times): ...``

    options: the EngineOptions (the child's detector settings; torch runs one thread there);
    ``frames`` yields one video's frames in order and adds the child's stage seconds (decode,
    detect) to ``times`` (a StageTimes); it raises InputError for what the child found wrong with
    the input, RuntimeError when the child failed."""

    def __init__(self, options):
        self.config = json.dumps(dataclasses.asdict(options))
        self.process = None
        self._ready = False
        self._start()

    def _start(self) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in [_ROOT, os.environ.get("PYTHONPATH", "")] if p))
        self.process = subprocess.Popen([sys.executable, "-m", "core.engine.detect_process", self.config],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self._ready = False

    def wait_ready(self) -> None:
        """Wait until the child has loaded its networks (it says "ready" once)."""
        if not self._ready:
            if _receive(self.process.stdout) != "ready":
                raise RuntimeError(f"the detection process did not start (exit status {self.process.poll()}); "
                                   "see its error above")
            self._ready = True

    def frames(self, path: str, video_options, times) -> Iterator[tuple]:
        from .inputs import InputError
        if self.process is None or self.process.poll() is not None:
            self._start()
        self.wait_ready()
        _send(self.process.stdin, (path, video_options))
        finished = False
        try:
            while True:
                item = _receive(self.process.stdout)
                if item is None:
                    raise RuntimeError(f"the detection process ended (exit status {self.process.poll()}); "
                                       "see its error above")
                if item[0] == "frame":
                    for stage, seconds in item[4].items():
                        times.seconds[stage] += seconds
                    yield item[1], item[2], item[3]
                    continue
                finished = True
                if item[0] == "error":
                    raise InputError(item[1])
                if item[0] == "failed":
                    raise RuntimeError(f"detection failed: {item[1]}")
                return
        finally:
            if not finished:          # left in the middle of a video: the child is still sending it
                self.close()

    def close(self) -> None:
        """Stop the child (its stdin closed, then terminated after 2 s, then killed)."""
        if self.process is None:
            return
        process, self.process = self.process, None
        try:
            process.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        for end in (lambda: None, process.terminate, process.kill):
            end()
            try:
                process.wait(2.0)
                break
            except subprocess.TimeoutExpired:
                continue
        process.stdout.close()


def _send(stream, item) -> None:
    data = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _receive(stream):
    """The next pickled item of ``stream``, or None when it ended."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    size = _HEADER.unpack(header)[0]
    data = stream.read(size)
    return pickle.loads(data) if len(data) == size else None


def serve(config: dict, jobs, answers) -> None:
    """The child: for each job, decode and detect the video's frames and send them (module docstring)."""
    import traceback

    import cv2
    import torch

    from .inputs import InputError
    from .pipeline import Engine, EngineOptions
    from .run import detected_frames

    torch.set_num_threads(1)
    options = EngineOptions(**{**config, "boxes": tuple(tuple(b) for b in config["boxes"])})
    engine = Engine(options)
    _send(answers, "ready")
    try:
        while True:
            job = _receive(jobs)
            if job is None:
                return
            path, video_options = job
            video = cv2.VideoCapture(path)
            detector = engine.video_detector() if video_options.frame_step == 1 else None
            try:
                count = max(0, int(video.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
                engine.times.reset()
                for index, rgb, found in detected_frames(engine, path, video, count, video_options, detector):
                    _send(answers, ("frame", index, rgb, found, dict(engine.times.seconds)))
                    engine.times.reset()
                _send(answers, ("end",))
            except InputError as e:
                _send(answers, ("error", str(e)))
            except (BrokenPipeError, OSError):
                return
            except Exception as e:
                traceback.print_exc()
                _send(answers, ("failed", f"{type(e).__name__}: {e}"))
            finally:
                video.release()
                if detector is not None:
                    detector.close()
    finally:
        engine.close()


if __name__ == "__main__":
    _answers = os.fdopen(os.dup(1), "wb")       # the frames' channel; anything else written to stdout goes to stderr
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    serve(json.loads(sys.argv[1]), sys.stdin.buffer, _answers)
