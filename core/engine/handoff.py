"""Two stages of a live stream on two cores: the perception of frame t+1 (decode, detect) runs in a
thread while frame t is fitted (network, fit, record), handed over one at a time.

Unlike ``core.engine.read_ahead`` (a queue that keeps a video's decoder many frames ahead, for
throughput), a live frame must not wait: at most one perceived frame is ever waiting for the fit,
and the next frame is grabbed only as late as lets its perception end when the fit of the frame
before does (start = the fit's start + its mean time - perception's mean time). So a frame's
latency is about perception + fit, not their sum over the frames queued before it, and the rate is
that of the slower stage. A camera's newest frame is taken when the grab happens, so it is as fresh
as it can be.

MediaPipe's torch modules, OpenCV and torch release the GIL while they compute, so a thread is
enough; the first stage stays sequential, as tracking needs its frames in order.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Iterator, Optional


class Handoff:
    """``for perceived in Handoff(frames, perceive, stop): fit(perceived)`` with ``perceive(frame)`` run
    in a thread of its own, on the frame after the one being fitted.

    frames: an iterator of frames (read only in the thread, one ``next`` per grab); perceive: frame ->
    what the loop gets; stop: when set, the thread grabs nothing more. An exception raised in the
    thread is raised again in the loop. Leaving the loop early (break, an exception) stops the thread
    and waits for it.
    """

    def __init__(self, frames: Iterator, perceive: Callable, stop: Optional[threading.Event] = None):
        self._frames, self._perceive = frames, perceive
        self._stop = stop or threading.Event()
        self._ended = threading.Event()
        self._changed = threading.Condition()
        self._slot = None                    # (item,) waiting for the fit, or None
        self._done = False                   # the thread has put its last item
        self._error: Optional[BaseException] = None
        self._fit_started = time.perf_counter()
        self._fit_mean = 0.0                 # seconds: running means of the two stages
        self._perceive_mean = 0.0
        self._thread = threading.Thread(target=self._produce, name="live-perception", daemon=True)

    def __iter__(self):
        self._thread.start()
        try:
            while True:
                with self._changed:
                    while self._slot is None and not self._done:
                        self._changed.wait(0.05)
                    if self._slot is None:
                        break
                    (item,), self._slot = self._slot, None
                    self._fit_started = time.perf_counter()
                    self._changed.notify_all()
                yield item
                self._fit_mean = _mean(self._fit_mean, time.perf_counter() - self._fit_started)
            if self._error is not None:
                raise self._error
        finally:
            self._ended.set()
            with self._changed:
                self._changed.notify_all()
            self._thread.join()

    def _produce(self) -> None:
        try:
            while not (self._stop.is_set() or self._ended.is_set()):
                with self._changed:          # one perceived frame waits at most
                    while self._slot is not None and not self._ended.is_set():
                        self._changed.wait(0.05)
                # grab just in time: the fit of the frame before ends about when this perception does
                start = self._fit_started + self._fit_mean - self._perceive_mean
                if start > time.perf_counter():
                    self._ended.wait(start - time.perf_counter())
                if self._stop.is_set() or self._ended.is_set():
                    break
                try:
                    frame = next(self._frames)
                except StopIteration:
                    break
                started = time.perf_counter()
                item = self._perceive(frame)
                self._perceive_mean = _mean(self._perceive_mean, time.perf_counter() - started)
                with self._changed:
                    self._slot = (item,)
                    self._changed.notify_all()
        except BaseException as error:       # handed to the loop, raised there
            self._error = error
        finally:
            close = getattr(self._frames, "close", None)
            if close is not None:
                close()
            with self._changed:
                self._done = True
                self._changed.notify_all()


def _mean(mean: float, value: float, share: float = 0.2) -> float:
    """An exponential running mean (the first value taken as it is)."""
    return value if mean == 0.0 else mean + share * (value - mean)
