"""Training and validation data streams: datasets named in the config, augmented into crops.

Each source in ``[data] train`` becomes an endless stream of raw samples (training/sample.py),
sharded across DDP ranks and DataLoader workers; sources are interleaved evenly, then
``TrainTransform`` turns every raw sample into a right-hand crop for the network.

A source "cache:PATH" is a file of ``python -m training.cache_features``: crops already augmented
and already seen by the frozen landmark trunk. Its samples are crop samples whose input is
``sample["trunk"]`` (the trunk's outputs) instead of ``sample["image"]``; caches cannot be mixed
with rendered sources (the network's input would differ within a batch).
"""

from __future__ import annotations

import itertools

import torch
from torch.utils.data import Dataset, IterableDataset

from .augment import UPRIGHT_JITTER_DEG, EvalTransform, TrainTransform
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


class CachedTrunkSamples(Dataset):
    """Map-style crop samples from a feature cache: ``{"trunk": {embedding, landmarks, ...}, targets}``."""

    def __init__(self, path: str):
        from .cache_features import load_cache
        cache = load_cache(path)
        self.trunk, self.targets = cache["trunk"], dict(cache["targets"])
        self.meta = cache["meta"]
        if "mask" not in self.targets:           # a cache made before masks were kept: no Lseg on it
            from .cache_features import MASK_SIZE
            rows = len(self.targets["joints_3d"])
            self.targets["mask"] = torch.zeros(rows, MASK_SIZE, MASK_SIZE, dtype=torch.float16)
            self.targets["has_mask"] = torch.zeros(rows, dtype=torch.bool)

    def __len__(self) -> int:
        return len(self.targets["joints_3d"])

    def __getitem__(self, index: int) -> dict:
        return {"trunk": {k: v[index] for k, v in self.trunk.items()},
                **{k: v[index] for k, v in self.targets.items()}}


class Interleaved(IterableDataset):
    """Round-robin over several endless streams, applying ``transform`` to every sample."""

    def __init__(self, sources: list, transform):
        self.sources, self.transform = sources, transform

    def __iter__(self):
        iterators = [iter(s) for s in self.sources]
        for it in itertools.cycle(iterators):
            yield self.transform(next(it))


def open_source(spec: str, cfg: TrainConfig, seed: int):
    """'synthetic' | 'freihand:DIR' | 'rhd:DIR' -> an endless stream of raw samples;
    'cache:PATH' -> an endless stream of cached crop samples."""
    kind, _, path = spec.partition(":")
    if kind == "cache" and path:
        if not cfg.network.pretrained_trunk:
            raise ValueError(f"{spec}: a feature cache feeds networks on the landmark trunk only "
                             f"(backbone mediapipe_hand), not {cfg.network.backbone}")
        return EndlessShuffled(CachedTrunkSamples(path), seed)
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
    raise ValueError(f"unknown training data {spec!r}: use 'synthetic', 'freihand:DIR', 'rhd:DIR' or 'cache:PATH'")


def make_train_transform(cfg: TrainConfig) -> TrainTransform:
    """The training augmentation for the config's network (its input size, normalisation and crop angle)."""
    network = cfg.network
    upright = {"upright": True, "rotation_deg": UPRIGHT_JITTER_DEG} if network.upright_crops else {}
    return TrainTransform(size=network.input_size, backgrounds=cfg.data.backgrounds or None,
                          normalization=network.input_normalization, **upright)


def make_train_stream(cfg: TrainConfig, rank: int = 0, world_size: int = 1, start_step: int = 0) -> IterableDataset:
    """The augmented crop stream; a resumed run (start_step > 0) starts on fresh samples."""
    seed = cfg.run.seed + 7919 * start_step
    cached = [spec.startswith("cache:") for spec in cfg.data.train]
    if any(cached) and not all(cached):
        raise ValueError(f"[data] train mixes feature caches and rendered data: {cfg.data.train}")
    sources = [open_source(spec, cfg, seed + i) for i, spec in enumerate(cfg.data.train)]
    transform = (lambda sample: sample) if all(cached) else make_train_transform(cfg)
    return Interleaved(sources, transform)


def make_val_samples(cfg: TrainConfig) -> list:
    """A fixed list of held-out synthetic crop samples (rendered with the held-out style)."""
    from .synth import SyntheticHands
    raw = SyntheticHands(count=cfg.data.val_count, seed=VAL_SEED, split="heldout", size=cfg.data.render_size)
    transform = EvalTransform(size=cfg.network.input_size, normalization=cfg.network.input_normalization,
                              upright=cfg.network.upright_crops)
    return [transform(sample) for sample in raw]
