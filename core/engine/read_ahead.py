"""Run a producer (decode + detect of video frames) in a background thread, a few items ahead of
its consumer (network + fit), so the two overlap on a multi-core CPU.

MediaPipe, OpenCV and torch all release the GIL while they compute, so a thread is enough; the
producer stays sequential, as MediaPipe's tracking mode needs its frames in order.
"""

from __future__ import annotations

import queue
import threading
from typing import Iterable, Iterator

_DONE = object()


class ReadAhead:
    """``with ReadAhead(items, depth) as ahead: for item in ahead: ...``

    items: any iterable, consumed in a background thread, at most ``depth`` items ahead of the
    loop. An exception raised by ``items`` is raised again in the loop, at the point it was reached.
    Leaving the ``with`` block early stops the producer and waits for its thread; a generator given
    as ``items`` is closed in that thread (so a ReadAhead inside it is left, and its thread ends too).
    """

    def __init__(self, items: Iterable, depth: int = 8):
        self._items, self._queue = items, queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="read-ahead", daemon=True)

    def __enter__(self) -> "ReadAhead":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():          # unblock a producer waiting on a full queue
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
        self._thread.join()

    def __iter__(self) -> Iterator:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item

    def _produce(self) -> None:
        try:
            for item in self._items:
                if not self._put(item):
                    return
            self._put(_DONE)
        except BaseException as error:          # handed to the consumer, raised there
            self._put(_Failure(error))
        finally:
            close = getattr(self._items, "close", None)
            if close is not None:
                close()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                pass
        return False


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error
