"""Write synthetic samples as a dataset in the official FreiHAND folder layout.

    training/rgb/%08d.jpg, training/mask/%08d.jpg, training_K.json, training_xyz.json,
    training_mano.json, training_scale.json, training_verts.json        (--split train)
    evaluation/... and evaluation_*.json with the same contents           (--split heldout)
    handcap_meta.json: hand model, split, seed, count and the per-sample is_left list

As in FreiHAND: K (3x3 pixels), xyz (21x3 metres, camera space, FreiHAND keypoint order),
scale (metres: the length of the middle finger's first bone, MCP to PIP), verts (Vx3 metres).
``*_mano.json`` rows follow FreiHAND's 1x61 layout [48 pose | 10 shape | 3 translation], but
hold the open hand model's parameters (16x3 axis-angle, its betas, its translation), not MANO's;
``handcap_meta.json`` says so, and which samples are left hands (FreiHAND has right hands only).
"""

from __future__ import annotations

import json
import os
import tempfile

import cv2
import numpy as np
from tqdm import tqdm

from .dataset import SyntheticHands

PREFIX = {"train": "training", "heldout": "evaluation"}
MIDDLE_MCP, MIDDLE_PIP = 9, 10  # FreiHAND keypoint indices


def _write_atomic(path: str, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _jpeg(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return data.tobytes()


def write_freihand(out: str, count: int, split: str = "train", seed: int = 0, size: int = 224,
                   backgrounds: str = None, progress: bool = True) -> str:
    """Render ``count`` samples into ``out`` in the FreiHAND layout; returns ``out``."""
    prefix = PREFIX[split]
    for folder in ("rgb", "mask"):
        os.makedirs(os.path.join(out, prefix, folder), exist_ok=True)
    dataset = SyntheticHands(count=count, seed=seed, split=split, size=size, backgrounds=backgrounds)
    records = {"K": [], "xyz": [], "mano": [], "scale": [], "verts": []}
    is_left = []
    for i in tqdm(range(count), desc=f"render {prefix}", unit="img", disable=not progress):
        sample, scene = dataset.render(i)
        rgb = sample["image"].permute(1, 2, 0).numpy()
        _write_atomic(os.path.join(out, prefix, "rgb", f"{i:08d}.jpg"), _jpeg(rgb[..., ::-1]))
        _write_atomic(os.path.join(out, prefix, "mask", f"{i:08d}.jpg"), _jpeg(sample["mask"].numpy() * 255))
        xyz = sample["joints_3d"].numpy()
        pose = sample["pose"].numpy().reshape(-1)
        records["K"].append(sample["K"].numpy().tolist())
        records["xyz"].append(xyz.tolist())
        records["verts"].append(np.round(sample["vertices"].numpy(), 6).tolist())
        records["scale"].append(float(np.linalg.norm(xyz[MIDDLE_PIP] - xyz[MIDDLE_MCP])))
        records["mano"].append([np.concatenate([pose, sample["betas"].numpy(), scene.transl]).tolist()])
        is_left.append(bool(sample["is_left"]))
    for key, values in records.items():
        _write_atomic(os.path.join(out, f"{prefix}_{key}.json"), json.dumps(values).encode())
    meta = {"hand_model": "open_hand", "split": split, "seed": seed, "count": count, "size": size,
            "is_left": is_left, "mano_json": "open hand parameters: [16x3 axis-angle | 10 betas | 3 transl]"}
    _write_atomic(os.path.join(out, "handcap_meta.json"), json.dumps(meta).encode())
    return out
