"""Wall-clock time spent per pipeline stage (decode, detect, crop, network, refine, smooth, write),
summed over a run; the benchmarks read it, the engine pays two clock reads per stage."""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict


class StageTimes:
    """``with times("network"): ...`` adds the block's seconds to ``times.seconds["network"]``."""

    def __init__(self):
        self.seconds = defaultdict(float)

    @contextlib.contextmanager
    def __call__(self, stage: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - start

    def reset(self) -> None:
        self.seconds.clear()
