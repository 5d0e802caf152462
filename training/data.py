"""Training and validation data streams: datasets named in the config, augmented into crops.

Each source in ``[data] train`` becomes an endless stream of raw samples (training/sample.py),
sharded across DDP ranks and DataLoader workers; sources are interleaved evenly, then
``TrainTransform`` turns every raw sample into a right-hand crop for the network.
"""

from __future__ import annotations

import itertools

import torch
from torch.utils.data import IterableDataset

from .augment import EvalTransform, TrainTransform
from .config import TrainConfig
from .synth.dataset import reader_slice

VAL_SEED = 10_000  # held-out synthetic validation renders never share a seed with training


class EndlessShuffled(IterableDataset):
    """A map-style dataset read forever in reshuffled epochs, each reader taking its own slice."""

    def __init__(self, dataset, seed: int):
        self.dataset, self.seed = dataset, seed

    def __iter__(self):
        index, count = reader_slice()
        for epoch in itertools.count():
            order = torch.randperm(len(self.dataset), generator=torch.Generator().manual_seed(self.seed + epoch))
            for i in order[index::count].tolist():
                yield self.dataset[i]


class Interleaved(IterableDataset):
    """Round-robin over several endless streams, applying ``transform`` to every sample."""

    def __init__(self, sources: list, transform):
        self.sources, self.transform = sources, transform

    def __iter__(self):
        iterators = [iter(s) for s in self.sources]
        for it in itertools.cycle(iterators):
            yield self.transform(next(it))


def open_source(spec: str, cfg: TrainConfig, seed: int):
    """'synthetic' | 'freihand:DIR' | 'rhd:DIR' -> an endless stream of raw samples."""
    kind, _, path = spec.partition(":")
    if kind == "synthetic":
        from .synth import SyntheticHands
        return SyntheticHands(count=None, seed=seed, split="train", size=cfg.data.render_size,
                              backgrounds=cfg.data.backgrounds or None)
    if kind == "freihand" and path:
        from .datasets import FreiHAND
        return EndlessShuffled(FreiHAND(path, split="training"), seed)
    if kind == "rhd" and path:
        from .datasets import RHD
        return EndlessShuffled(RHD(path, split="training"), seed)
    raise ValueError(f"unknown training data {spec!r}: use 'synthetic', 'freihand:DIR' or 'rhd:DIR'")


def make_train_stream(cfg: TrainConfig, rank: int = 0, world_size: int = 1, start_step: int = 0) -> IterableDataset:
    """The augmented crop stream; a resumed run (start_step > 0) starts on fresh samples."""
    seed = cfg.run.seed + 7919 * start_step
    sources = [open_source(spec, cfg, seed + i) for i, spec in enumerate(cfg.data.train)]
    transform = TrainTransform(size=cfg.network.input_size, backgrounds=cfg.data.backgrounds or None)
    return Interleaved(sources, transform)


def make_val_samples(cfg: TrainConfig) -> list:
    """A fixed list of held-out synthetic crop samples (rendered with the held-out style)."""
    from .synth import SyntheticHands
    raw = SyntheticHands(count=cfg.data.val_count, seed=VAL_SEED, split="heldout", size=cfg.data.render_size)
    transform = EvalTransform(size=cfg.network.input_size)
    return [transform(sample) for sample in raw]
