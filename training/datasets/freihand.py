"""FreiHAND (Zimmermann et al., ICCV 2019) in its official layout, and our synthetic renders in it.

    root/training/rgb/%08d.jpg         training/mask/%08d.jpg      (mask: hand = white)
    root/training_{K,xyz,mano,scale}.json  [training_verts.json]
    root/evaluation/rgb/%08d.jpg       [evaluation/mask/%08d.jpg]
    root/evaluation_{K,xyz,scale}.json     [evaluation_verts.json, evaluation_mano.json]

The real training set has N = 32560 annotations and 4N images (the same frames with different
backgrounds/colours): image i uses annotation (and mask) i % N. The real MANO parameters and
vertices are MANO's, not the open hand's, so real FreiHAND samples have has_mesh False and zero
pose/betas/vertices. ``training_scale.json`` (a bone-length scale) is not needed and not read.

Our synthetic renders (``python -m training.synth``) put a ``handcap_meta.json`` in the root.
Then, if its "hand_model" is "open_hand" (the default when the key is absent), ``{split}_mano.json``
rows are the open hand's [48 pose axis-angle | 10 betas | 3 transl] and ``{split}_verts.json`` its
vertices (camera space, metres): when both are there, samples have has_mesh True. Its optional "is_left" is
a per-annotation list of booleans; left hands' pose/vertices are the mirrored model's. Its "prefix"
(when present) must name the split being read: the meta describes one split.
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch

from .common import project, raw_sample, read_gray, read_rgb

SPLITS = ("training", "evaluation")
META_FILE = "handcap_meta.json"


def _load_json(path: str, dtype=np.float32) -> np.ndarray:
    with open(path) as f:
        return np.asarray(json.load(f), dtype=dtype)


class FreiHAND(torch.utils.data.Dataset):
    """Raw samples of one FreiHAND split (see the module docstring for the layout)."""

    def __init__(self, root: str, split: str = "training"):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.root, self.split = root, split
        self.K = _load_json(os.path.join(root, f"{split}_K.json")).reshape(-1, 3, 3)   # (N, 3, 3)
        self.xyz = _load_json(os.path.join(root, f"{split}_xyz.json")).reshape(-1, 21, 3)  # (N, 21, 3) metres
        self.num_annotations = len(self.K)
        if len(self.xyz) != self.num_annotations:
            raise ValueError(f"{root}: {len(self.xyz)} {split}_xyz entries but {self.num_annotations} {split}_K entries")
        rgb_dir = os.path.join(root, split, "rgb")
        self.num_images = sum(name.endswith(".jpg") for name in os.listdir(rgb_dir))
        if self.num_images == 0 or self.num_images % self.num_annotations:
            raise ValueError(f"{rgb_dir}: {self.num_images} images is not a multiple of {self.num_annotations} annotations")

        meta_path = os.path.join(root, META_FILE)
        meta = None
        if os.path.isfile(meta_path):
            with open(meta_path) as f:
                meta = json.load(f)
        self.is_left = np.zeros(self.num_annotations, bool)
        self.mano = self.verts = None
        if meta is not None:
            if meta.get("prefix", split) != split:   # one meta per root: the split last written there
                raise ValueError(f"{meta_path} describes the {meta['prefix']!r} split, not {split!r}: "
                                 "write each synthetic split into its own folder")
            is_left = meta.get("is_left")
            if is_left is not None:
                if len(is_left) != self.num_annotations:
                    raise ValueError(f"{meta_path}: 'is_left' has {len(is_left)} entries, expected {self.num_annotations}")
                self.is_left = np.asarray(is_left, bool)
            if meta.get("hand_model", "open_hand") == "open_hand" and os.path.isfile(self._path("verts")):
                self.verts = _load_json(self._path("verts"))                                        # (N, V, 3)
                self.mano = _load_json(self._path("mano")).reshape(self.num_annotations, -1)        # (N, 61)

    def _path(self, kind: str) -> str:
        return os.path.join(self.root, f"{self.split}_{kind}.json")

    def __len__(self) -> int:
        return self.num_images

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.num_images:
            raise IndexError(index)
        a = index % self.num_annotations
        image = read_rgb(os.path.join(self.root, self.split, "rgb", f"{index:08d}.jpg"))
        mask_path = os.path.join(self.root, self.split, "mask", f"{a:08d}.jpg")
        mask = read_gray(mask_path) > 127 if os.path.isfile(mask_path) else None
        mesh = {}
        if self.verts is not None:
            mesh = {"vertices": self.verts[a], "pose": self.mano[a, :48], "betas": self.mano[a, 48:58]}
        return raw_sample(image, self.K[a], project(self.xyz[a], self.K[a]), self.xyz[a], mask=mask,
                          is_left=bool(self.is_left[a]), **mesh)
