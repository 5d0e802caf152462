"""Render synthetic hands once, run the frozen landmark trunk on augmented crops of them once, and
save its outputs with the crops' targets: many training epochs of a head then cost no rendering
and no trunk.

    python -m training.cache_features --data synthetic:6000 --copies 2 --out runs/feats_train.pt

Each of the N renders (training.synth.SyntheticHands, split "train", seed ``--seed``) becomes
``--copies`` crops through the trainer's own ``TrainTransform`` (random crop box, upright as the trunk
wants it with +-30 degrees of rotation, occluders, background and colour changes; left hands flipped to
right) at 224 px in [0, 1], the trunk's input;
the trunk (core.networks.landmark_trunk.LandmarkTrunk) runs on them in batches, channels-last.

The file (torch.save, written atomically) holds a dict:
  format    "handcap-trunk-cache/1"
  trunk     the trunk outputs, N * copies rows: embedding (float16), landmarks, world, presence,
            handedness (float32)
  targets   the crop samples' targets (training/sample.py): keypoints_2d, joints_3d, pose, betas
            (float32), is_left, has_3d, has_mesh, has_mask (bool), and mask: the crop's hand mask
            area-downsampled to MASK_SIZE x MASK_SIZE (float16 in [0, 1]), the resolution the
            silhouette loss (Lseg) compares at, so a head trained on a cache can use Lseg. (Caches
            made before masks were kept read as has_mask False.)
  meta      data spec, copies, seed, render_size, the hand model's fingerprint (a cache made with
            another hand model is refused by the trainer), seconds taken
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch
from tqdm import tqdm

FORMAT = "handcap-trunk-cache/1"
TARGET_KEYS = ("keypoints_2d", "joints_3d", "pose", "betas", "is_left", "has_3d", "has_mesh", "has_mask", "mask")
HALF_KEYS = ("embedding", "mask")  # ReLU6 features in [0, 6], masks in [0, 1]: float16 keeps ~3 significant digits
MASK_SIZE = 64             # pixels: the silhouette loss's default size (training.losses.HamrLoss)


def hand_model_fingerprint(name: str = "open") -> str:
    """A short hash of the hand model the renders' ground truth comes from (its rest keypoints,
    skinning and shape space)."""
    import hashlib

    from core.hand_model import load_hand_model
    model = load_hand_model(name, "right")
    digest = hashlib.sha256()
    for field in ("v_template", "shapedirs", "joint_regressor", "weights", "tip_vertex_ids"):
        value = getattr(model, field, None)
        if value is not None:
            digest.update(torch.as_tensor(value).float().numpy().tobytes())
    return digest.hexdigest()[:16]


def downsample_mask(mask: torch.Tensor) -> torch.Tensor:
    """(S, S) crop mask in [0, 1] -> (MASK_SIZE, MASK_SIZE), each pixel the mean of the area it covers."""
    import torch.nn.functional as F
    return F.interpolate(mask.float()[None, None], size=(MASK_SIZE, MASK_SIZE), mode="area")[0, 0]


def build_cache(count: int, copies: int, seed: int = 0, render_size: int = 224, batch_size: int = 16,
                split: str = "train", progress: bool = True) -> dict:
    """Render ``count`` synthetic hands, ``copies`` augmented crops each, run the trunk: the cache dict."""
    from core.networks.landmark_trunk import TRUNK_KEYS, LandmarkTrunk

    from .augment import UPRIGHT_JITTER_DEG, EvalTransform, TrainTransform
    from .synth import SyntheticHands

    start = time.perf_counter()
    torch.manual_seed(seed)                                 # the augmentations draw from torch's generator
    trunk = LandmarkTrunk().eval()
    size = LandmarkTrunk.INPUT_SIZE
    transform = (TrainTransform(size=size, normalization="unit", upright=True, rotation_deg=UPRIGHT_JITTER_DEG)
                 if split == "train" else EvalTransform(size=size, normalization="unit", upright=True))
    renders = SyntheticHands(count=count, seed=seed, split=split, size=render_size)
    outputs = {}
    pending = []

    def flush():
        images = torch.stack([c["image"] for c in pending]).contiguous(memory_format=torch.channels_last)
        found = trunk(images)
        for key, value in found.items():
            outputs.setdefault(key, []).append(value.half() if key in HALF_KEYS else value.float())
        for key in TARGET_KEYS:
            values = torch.stack([torch.as_tensor(c[key]) for c in pending])
            outputs.setdefault(key, []).append(values.half() if key in HALF_KEYS else values)
        pending.clear()

    with tqdm(total=count * copies, desc="cache", unit="crop", file=sys.stderr, disable=not progress) as bar:
        for raw in renders:
            for _ in range(copies):
                crop = transform(raw)
                crop["mask"] = downsample_mask(crop["mask"])
                pending.append(crop)
            if len(pending) >= batch_size:
                bar.update(len(pending))
                flush()
        if pending:
            bar.update(len(pending))
            flush()
    joined = {key: torch.cat(values) for key, values in outputs.items()}
    return {"format": FORMAT,
            "trunk": {k: joined[k] for k in TRUNK_KEYS},
            "targets": {k: joined[k] for k in TARGET_KEYS},
            "meta": {"data": f"synthetic:{count}", "split": split, "copies": copies, "seed": seed,
                     "render_size": render_size, "hand_model": hand_model_fingerprint(),
                     "seconds": round(time.perf_counter() - start, 1)}}


def save_cache(cache: dict, path: str) -> str:
    """torch.save to a temporary file beside ``path``, then rename."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        torch.save(cache, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def load_cache(path: str, check_hand_model: bool = True) -> dict:
    """Read a cache file; ValueError when it is not one, or was made with another hand model."""
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such feature cache (make one with python -m training.cache_features)")
    cache = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(cache, dict) or cache.get("format") != FORMAT:
        raise ValueError(f"{path}: not a handcap feature cache (format {FORMAT})")
    if check_hand_model and cache["meta"].get("hand_model") != hand_model_fingerprint():
        raise ValueError(f"{path}: made with another hand model (fingerprint {cache['meta'].get('hand_model')}, "
                         f"now {hand_model_fingerprint()}); rebuild it with python -m training.cache_features")
    return cache


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.cache_features",
                                     description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--data", required=True, metavar="synthetic:N", help="how many synthetic hands to render")
    parser.add_argument("--copies", type=int, default=2, help="augmented crops per render (default 2)")
    parser.add_argument("--out", required=True, help="the cache file to write (.pt)")
    parser.add_argument("--seed", type=int, default=0, help="render and augmentation seed (default 0)")
    parser.add_argument("--split", choices=("train", "heldout"), default="train",
                        help="render style; heldout crops are the evaluation's (no augmentation)")
    parser.add_argument("--render-size", type=int, default=224, help="rendered image side, pixels (default 224)")
    parser.add_argument("--batch-size", type=int, default=16, help="crops per trunk forward pass (default 16)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args(argv)
    kind, _, value = args.data.partition(":")
    if kind != "synthetic" or not value.isdigit() or int(value) < 1:
        parser.error(f"--data must be synthetic:N with N >= 1, got {args.data!r}")
    if args.copies < 1:
        parser.error("--copies must be at least 1")
    torch.set_num_threads(max(1, args.threads))
    cache = build_cache(int(value), args.copies, args.seed, args.render_size, args.batch_size, args.split)
    save_cache(cache, args.out)
    rows = len(cache["targets"]["joints_3d"])
    print(f"cache_features: {rows} crops from {value} renders in {cache['meta']['seconds']} s -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
