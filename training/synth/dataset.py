"""``SyntheticHands``: rendered hands with exact ground truth, as an IterableDataset (and map-style).

Sample i of (seed, split) is always the same image: its random numbers come from generators
seeded with (seed, split, i). Readers (DDP ranks x DataLoader workers) take disjoint slices
i = reader, reader + readers, ... (``reader_slice``); with one rank, a DataLoader returns the
samples in index order. Samples follow training/sample.py ("raw sample").

Each process renders through its own EGL context, made on first use. llvmpipe's threads do not
survive ``fork``: start DataLoader workers with ``multiprocessing_context=WORKER_CONTEXT``
("spawn"); a pickled dataset leaves its renderer behind and makes a new one where it is used.
"""

from __future__ import annotations

import itertools
import os

import torch
from torch.utils.data import IterableDataset, get_worker_info

from .scene import SPLITS
from .synthesizer import Synthesizer

WORKER_CONTEXT = "spawn"


def reader_slice() -> tuple[int, int]:
    """(index, count) of this reader among all DDP ranks x DataLoader workers (rank-major)."""
    rank, world = 0, 1
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    info = get_worker_info()
    worker, workers = (info.id, info.num_workers) if info else (0, 1)
    return rank * workers + worker, world * workers


class SyntheticHands(IterableDataset):
    """Synthetic raw samples of style ``split`` ("train" | "heldout").

    count       number of samples (indices 0..count-1); None renders forever (no ``len``, no ``[i]`` bounds)
    seed        dataset seed: (seed, split, index) fixes a sample
    size        image side, pixels
    backgrounds optional folder of photos mixed into the procedural backgrounds
    batch       samples posed together per step of iteration (speed only; no effect on the samples)
    supersample renderer anti-aliasing factor (1: none beyond the lens blur; 2: render at 2x, box-filter down)
    """

    def __init__(self, count: int = None, seed: int = 0, split: str = "train", size: int = 224,
                 backgrounds: str = None, batch: int = 16, supersample: int = 1):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
        if backgrounds and not os.path.isdir(backgrounds):
            raise ValueError(f"backgrounds: {backgrounds} is not a folder")
        if count is not None and count < 0:
            raise ValueError(f"count must be >= 0 or None, got {count}")
        self.count, self.seed, self.split, self.size = count, int(seed), split, int(size)
        self.backgrounds, self.batch, self.supersample = backgrounds, int(batch), int(supersample)
        self._synthesizer = None  # made in the process that renders

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_synthesizer": None}

    def __len__(self) -> int:
        if self.count is None:
            raise TypeError("an endless SyntheticHands (count=None) has no length")
        return self.count

    def __iter__(self):
        reader, readers = reader_slice()
        indices = itertools.count(reader, readers) if self.count is None else iter(range(reader, self.count, readers))
        while chunk := list(itertools.islice(indices, self.batch)):
            for rendered in self.render(chunk):
                yield rendered.sample

    def __getitem__(self, index: int) -> dict:
        if self.count is not None and not 0 <= index < self.count:
            raise IndexError(f"sample {index} out of range [0, {self.count})")
        return self.render([index])[0].sample

    def render(self, indices) -> list:
        """[Rendered] (synthesizer.py) of these indices: the samples plus their scenes and translations."""
        if self._synthesizer is None:
            self._synthesizer = Synthesizer(self.split, self.seed, self.size, self.backgrounds, self.supersample)
        return self._synthesizer.render(indices)
