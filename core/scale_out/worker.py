"""One engine that estimates the inputs of ``--ray`` tasks (a Ray actor wraps it; no ray here).

The engine (networks, hand model) loads once, when the worker starts; every task then goes
through ``Estimator.estimate_file``, the very code of a plain ``handcap estimate``, so outputs,
their names, atomic writes and error lines are the same. Errors and warnings are kept and sent
back with the results, for the driver to print (a worker's own output goes to Ray's log files).
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Optional

from core.engine.progress import Progress

from .plan import Task


@dataclasses.dataclass
class Settings:
    """What every worker's engine is built with (the command line's options): ``engine`` and
    ``video`` are EngineOptions' and VideoOptions' fields (plain values: the driver imports no torch)."""

    engine: dict
    video: dict
    out_dir: str
    overlay: bool = False
    focal: Optional[float] = None
    K_file: Optional[str] = None
    verbose: bool = False


@dataclasses.dataclass
class Outcome:
    """What became of one input: its capture file (None: it failed), hands, frames estimated,
    seconds, and its error/warning lines as (kind, text)."""

    order: int
    source: str
    capture: Optional[str]
    hands: int
    no_hand: bool
    frames: int
    seconds: float
    messages: list


class Recorder(Progress):
    """A Progress that keeps error and warning lines instead of printing them (and shows no bar)."""

    def __init__(self):
        super().__init__("text")
        self.messages: list = []

    def update(self, stage: str, done: int, total: int, message: str = "", force: bool = False) -> None:
        pass

    def _say(self, kind: str, message: str) -> None:
        self.messages.append((kind, " ".join(str(message).split())))


class CaptureWorker:
    """The engine of one worker process; ``run(task)`` estimates a task's inputs one by one."""

    def __init__(self, settings: Settings):
        from core.engine.pipeline import EngineOptions
        from core.engine.run import Estimator, VideoOptions
        self.progress = Recorder()
        s = settings
        self.estimator = Estimator(EngineOptions(**s.engine), VideoOptions(**s.video), s.out_dir, overlay=s.overlay,
                                   focal=s.focal, K_file=s.K_file, progress=self.progress, verbose=s.verbose)

    def pid(self) -> int:
        """This worker's process id (tests kill it)."""
        return os.getpid()

    def run(self, task: Task) -> list:
        outcomes = []
        estimator = self.estimator
        for item in task.items:
            self.progress.messages, estimator.no_hand, estimator.hands = [], [], {}
            frames, start = estimator.frames, time.perf_counter()
            capture = estimator.estimate_file(item.source, item.capture)
            outcomes.append(Outcome(item.order, item.source, capture, estimator.hands.get(capture, 0),
                                    bool(estimator.no_hand), estimator.frames - frames, time.perf_counter() - start,
                                    list(self.progress.messages)))
        return outcomes

    def close(self) -> None:
        self.estimator.close()
