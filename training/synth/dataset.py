"""``SyntheticHands``: rendered hands with exact ground truth, as an IterableDataset.

Sample i of (seed, split) is always the same image: its random numbers come from a generator
seeded with (seed, split, i). Readers (DDP ranks x DataLoader workers) take disjoint slices
i = reader, reader + readers, ...; each worker opens its own EGL context on first use.
Samples follow training/sample.py ("raw sample").

EGL (llvmpipe's threads) does not survive fork: use DataLoader workers started with
``multiprocessing_context="spawn"`` (``WORKER_CONTEXT``); a pickled dataset leaves its GL
context behind and opens a new one where it is unpickled.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from .backgrounds import Backgrounds, occluder_mask
from .render import HandRenderer
from .scene import SceneSampler

SPLITS = {"train": 0, "heldout": 1}
WORKER_CONTEXT = "spawn"
OCCLUDER_PROBABILITY = 0.3


def reader_slice() -> tuple[int, int]:
    """(index, count) of this reader among all DDP ranks x DataLoader workers."""
    rank, world = 0, 1
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    info = get_worker_info()
    worker, workers = (info.id, info.num_workers) if info else (0, 1)
    return rank * workers + worker, world * workers


class SyntheticHands(IterableDataset):
    """count=None renders forever; ``len()`` and ``[i]`` work when count is given."""

    def __init__(self, count: int = None, seed: int = 0, split: str = "train", size: int = 224,
                 backgrounds: str = None):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
        self.count, self.seed, self.split, self.size = count, seed, split, size
        self.background_folder = backgrounds
        self._parts = None  # (renderer, scenes, backgrounds), made in the process that renders

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_parts": None}

    def __len__(self) -> int:
        if self.count is None:
            raise TypeError("an endless SyntheticHands has no length")
        return self.count

    def __iter__(self):
        reader, readers = reader_slice()
        indices = itertools.count(reader, readers) if self.count is None else range(reader, self.count, readers)
        for i in indices:
            yield self[i]

    def __getitem__(self, index: int) -> dict:
        return self.render(index)[0]

    def render(self, index: int):
        """(raw sample, HandScene) of sample ``index``; the scene adds what the contract has not
        (translation, lighting) for writers."""
        if self.count is not None and not 0 <= index < self.count:
            raise IndexError(index)
        if self._parts is None:
            self._parts = (HandRenderer(self.size, self.size), SceneSampler(self.size, self.split),
                           Backgrounds(self.size, self.split, self.background_folder))
        renderer, scenes, backgrounds = self._parts
        rng = np.random.default_rng([self.seed, SPLITS[self.split], index])
        scene = scenes.sample(rng)
        model = scenes.models["left" if scene.is_left else "right"]
        rgba = renderer.render(scene.vertices, model.faces, scene.albedo, scene.K, scene.lighting)
        hand = rgba[..., 3] > 0.5
        keypoints_2d = project(scene.keypoints, scene.K)
        visible = hand.astype(np.float32)
        image = backgrounds.sample(rng)
        image = image * (1 - rgba[..., 3:]) + rgba[..., :3] * rgba[..., 3:]
        if rng.random() < OCCLUDER_PROBABILITY:
            occluder = occluder_mask(rng, self.size, hand_box(keypoints_2d))
            image = image * (1 - occluder[..., None]) + backgrounds.sample(rng) * occluder[..., None]
            visible *= 1 - occluder
        noise = rng.standard_normal(image.shape, dtype=np.float32) * rng.uniform(0, 0.02)
        image = np.clip(image + noise, 0, 1)
        return {
            "image": torch.from_numpy((image * 255 + 0.5).astype(np.uint8)).permute(2, 0, 1).contiguous(),
            "mask": torch.from_numpy(visible.astype(np.uint8)),
            "keypoints_2d": torch.from_numpy(keypoints_2d.astype(np.float32)),
            "joints_3d": torch.from_numpy(scene.keypoints),
            "vertices": torch.from_numpy(scene.vertices),
            "pose": torch.from_numpy(scene.pose.astype(np.float32)),
            "betas": torch.from_numpy(scene.betas.astype(np.float32)),
            "K": torch.from_numpy(scene.K),
            "is_left": torch.tensor(scene.is_left),
            "has_mask": torch.tensor(True), "has_3d": torch.tensor(True), "has_mesh": torch.tensor(True),
        }, scene


def project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(N, 3) camera space -> (N, 2) pixels."""
    uvw = points @ K.T
    return uvw[:, :2] / uvw[:, 2:3]


def hand_box(keypoints_2d: np.ndarray) -> tuple:
    x0, y0 = keypoints_2d.min(0)
    x1, y1 = keypoints_2d.max(0)
    return int(x0), int(y0), int(x1), int(y1)
