"""Write synthetic samples as a dataset in the official FreiHAND folder layout.

    --split train                          --split heldout
    training/rgb/%08d.jpg                  evaluation/rgb/%08d.jpg
    training/mask/%08d.jpg                 evaluation/mask/%08d.jpg
    training_K.json                        evaluation_K.json          [N x 3 x 3] pixels
    training_xyz.json                      evaluation_xyz.json        [N x 21 x 3] metres, camera space
    training_verts.json                    evaluation_verts.json      [N x V x 3] metres, camera space
    training_mano.json                     evaluation_mano.json       [N x 1 x 61]
    training_scale.json                    evaluation_scale.json      [N] metres
    handcap_meta.json

As in FreiHAND: keypoints in the FreiHAND order (wrist, thumb..pinky base to tip), ``scale`` is
the length of the middle finger's first bone (MCP to PIP keypoint, 9 -> 10), masks are JPEGs
(0 / 255, threshold at 128). Unlike FreiHAND:
- ``*_mano.json`` rows keep FreiHAND's 1 x 61 layout [48 pose | 10 shape | 3 translation] but hold
  the **open hand model's** parameters (16 x 3 axis-angle in MANO's joint order, camera-space
  global orientation; its 10 betas; the translation), not MANO's:
  ``HandLayer(load_hand_model("open", side))(betas, pose, transl)`` reproduces xyz and verts.
- Both sides are written as rendered; ``handcap_meta.json`` lists ``is_left`` per sample (a left
  hand's parameters are those of the mirrored model). FreiHAND itself has right hands only, so a
  reader that ignores ``is_left`` sees left hands with right-hand parameters.
- The mask is the visible hand (occluders cut out; the forearm is not part of it); xyz keeps
  every keypoint, occluded or not.
Every file is written to a temporary name and renamed when complete; JSON lists are streamed.
"""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from core.hand_model import HandLayer, load_hand_model

from .dataset import WORKER_CONTEXT, SyntheticHands

PREFIX = {"train": "training", "heldout": "evaluation"}
MIDDLE_MCP, MIDDLE_PIP = 9, 10  # FreiHAND keypoint indices
JPEG_QUALITY = 95


class JsonListWriter:
    """Streams the elements of one JSON list to ``path`` (through a temporary file, renamed on close)."""

    def __init__(self, path: str):
        self.path, self.tmp = path, f"{path}.tmp{os.getpid()}"
        self.file = open(self.tmp, "w")
        self.file.write("[")
        self.count = 0

    def append(self, value) -> None:
        self.file.write((", " if self.count else "") + json.dumps(value))
        self.count += 1

    def close(self) -> None:
        self.file.write("]")
        self.file.close()
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        self.file.close()
        os.remove(self.tmp)


def write_file(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def jpeg(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return data.tobytes()


class Translations:
    """transl (3,) of a raw sample: its wrist keypoint minus the rest wrist of its shape (the
    layer rotates about the rest wrist, then adds transl)."""

    def __init__(self):
        self.layers = {left: HandLayer(load_hand_model("open", "left" if left else "right")) for left in (False, True)}

    @torch.no_grad()
    def __call__(self, sample: dict) -> np.ndarray:
        rest_wrist = self.layers[bool(sample["is_left"])](sample["betas"][None]).rest_joints[0, 0]
        return (sample["joints_3d"][0].double() - rest_wrist.double()).numpy()


def rounded(array, decimals: int) -> list:
    return np.round(np.asarray(array, np.float64), decimals).tolist()


def write_freihand(out: str, count: int, split: str = "train", seed: int = 0, size: int = 224,
                   backgrounds: str = None, workers: int = 0, progress: bool = True) -> str:
    """Render samples 0..count-1 of (seed, split) into ``out`` in the FreiHAND layout; returns ``out``.

    ``workers`` > 0 renders in that many spawned DataLoader workers (the order is kept)."""
    prefix = PREFIX[split]
    for folder in ("rgb", "mask"):
        os.makedirs(os.path.join(out, prefix, folder), exist_ok=True)
    dataset = SyntheticHands(count=count, seed=seed, split=split, size=size, backgrounds=backgrounds)
    loader = DataLoader(dataset, batch_size=None, num_workers=workers,
                        multiprocessing_context=WORKER_CONTEXT if workers else None)
    lists = {key: JsonListWriter(os.path.join(out, f"{prefix}_{key}.json"))
             for key in ("K", "xyz", "verts", "mano", "scale")}
    translations = Translations()
    is_left = []
    try:
        for i, sample in enumerate(tqdm(loader, total=count, desc=f"{prefix} ({split})", unit="img",
                                        disable=not progress)):
            name = f"{i:08d}.jpg"
            write_file(os.path.join(out, prefix, "rgb", name), jpeg(sample["image"].permute(1, 2, 0).numpy()[..., ::-1]))
            write_file(os.path.join(out, prefix, "mask", name), jpeg(sample["mask"].numpy() * 255))
            xyz = sample["joints_3d"].double().numpy()
            lists["K"].append(rounded(sample["K"], 4))
            lists["xyz"].append(rounded(xyz, 7))
            lists["verts"].append(rounded(sample["vertices"], 7))
            parameters = np.concatenate([sample["pose"].numpy().ravel(), sample["betas"].numpy(), translations(sample)])
            lists["mano"].append([rounded(parameters, 7)])
            lists["scale"].append(round(float(np.linalg.norm(xyz[MIDDLE_PIP] - xyz[MIDDLE_MCP])), 7))
            is_left.append(bool(sample["is_left"]))
    except BaseException:
        for writer in lists.values():
            writer.discard()
        raise
    for writer in lists.values():
        writer.close()
    meta = {
        "format": "FreiHAND layout, written by python -m training.synth",
        "hand_model": "open_hand", "split": split, "prefix": prefix, "seed": seed, "count": count, "size": size,
        "backgrounds": backgrounds, "num_vertices": int(sample["vertices"].shape[0]) if count else None,
        "mano_json": "open hand parameters per sample: [16x3 axis-angle (MANO joint order, camera-space global "
                     "orientation) | 10 betas | 3 transl (metres)]; not MANO",
        "mask": "visible hand pixels (occluders removed, forearm excluded); xyz/verts include hidden parts",
        "is_left": is_left,
    }
    write_file(os.path.join(out, "handcap_meta.json"), json.dumps(meta, indent=1).encode())
    return out
