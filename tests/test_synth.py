"""Synthetic hands: the sample contract, exact ground truth, determinism, sharding, FreiHAND layout."""

import hashlib
import json
import os

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from core.hand_model import load_hand_model
from training.sample import RAW_KEYS
from training.synth import SyntheticHands
from training.synth.dataset import WORKER_CONTEXT
from training.synth.__main__ import main as synth_main

SIZE = 128


@pytest.fixture(scope="module")
def samples():
    dataset = SyntheticHands(count=16, seed=3, size=SIZE)
    return [dataset[i] for i in range(16)]


def test_contract(samples):
    s = samples[0]
    assert set(s) == set(RAW_KEYS)
    assert s["image"].dtype == torch.uint8 and s["image"].shape == (3, SIZE, SIZE)
    assert s["mask"].dtype == torch.uint8 and s["mask"].shape == (SIZE, SIZE) and set(s["mask"].unique().tolist()) <= {0, 1}
    assert s["keypoints_2d"].shape == (21, 2) and s["joints_3d"].shape == (21, 3) and s["vertices"].shape == (1609, 3)
    assert s["pose"].shape == (16, 3) and s["betas"].shape == (10,) and s["K"].shape == (3, 3)
    assert {bool(x["is_left"]) for x in samples} == {True, False}
    assert all((x["joints_3d"][:, 2] > 0.1).all() for x in samples)


def test_keypoints_are_the_projection_of_the_3d_joints(samples):
    for s in samples:
        K, X = s["K"].double().numpy(), s["joints_3d"].double().numpy()
        u = K[0, 0] * X[:, 0] / X[:, 2] + K[0, 2]
        v = K[1, 1] * X[:, 1] / X[:, 2] + K[1, 2]
        np.testing.assert_allclose(s["keypoints_2d"].numpy(), np.stack([u, v], 1), atol=1e-3)
        assert ((s["keypoints_2d"] >= 0) & (s["keypoints_2d"] < SIZE)).all()  # the whole hand is in view


def test_mask_is_the_rendered_mesh(samples):
    """The mask is the projected mesh (an independent cv2 rasterisation), less any occluder."""
    faces = load_hand_model("open").faces
    unoccluded = 0
    near = np.ones((3, 3), np.uint8)
    for s in samples:
        K, V = s["K"].double().numpy(), s["vertices"].double().numpy()
        pixels = (V @ K.T)[:, :2] / V[:, 2:3]
        raster = np.zeros((SIZE, SIZE), np.uint8)
        for triangle in np.round(pixels[faces] * 16).astype(np.int32):   # one by one: fillPoly would XOR overlaps
            cv2.fillConvexPoly(raster, triangle, 1, shift=4)
        mask = s["mask"].numpy()
        assert (mask & (1 - cv2.dilate(raster, near))).sum() == 0          # no mask pixel off the mesh
        unoccluded += (raster & (1 - cv2.dilate(mask, near))).sum() == 0   # the whole mesh is in the mask
    assert unoccluded >= len(samples) // 2                                   # occluders cover ~30 % of samples


def test_deterministic_and_distinct():
    a = SyntheticHands(count=4, seed=7, size=64)
    b = SyntheticHands(count=4, seed=7, size=64)
    assert torch.equal(a[2]["image"], b[2]["image"]) and torch.equal(a[2]["joints_3d"], b[2]["joints_3d"])
    assert not torch.equal(a[1]["image"], a[2]["image"])
    assert not torch.equal(a[0]["image"], SyntheticHands(count=4, seed=8, size=64)[0]["image"])
    heldout = SyntheticHands(count=4, seed=7, split="heldout", size=64)
    assert not torch.equal(a[0]["image"], heldout[0]["image"])


def test_workers_share_the_work_without_repeats():
    dataset = SyntheticHands(count=6, seed=1, size=64)
    direct = {hashlib.md5(dataset[i]["image"].numpy().tobytes()).hexdigest() for i in range(6)}
    loader = DataLoader(dataset, batch_size=None, num_workers=2, multiprocessing_context=WORKER_CONTEXT)
    seen = [hashlib.md5(s["image"].numpy().tobytes()).hexdigest() for s in loader]
    assert len(seen) == 6 and set(seen) == direct


def test_freihand_layout(tmp_path, capsys):
    assert synth_main(["--out", str(tmp_path), "--count", "3", "--size", "64", "--seed", "2"]) == 0
    assert sorted(os.listdir(tmp_path / "training" / "rgb")) == ["00000000.jpg", "00000001.jpg", "00000002.jpg"]
    assert sorted(os.listdir(tmp_path / "training" / "mask")) == ["00000000.jpg", "00000001.jpg", "00000002.jpg"]
    shapes = {"K": (3, 3, 3), "xyz": (3, 21, 3), "mano": (3, 1, 61), "verts": (3, 1609, 3), "scale": (3,)}
    for key, shape in shapes.items():
        assert np.array(json.load(open(tmp_path / f"training_{key}.json"))).shape == shape
    xyz = np.array(json.load(open(tmp_path / "training_xyz.json")))
    scale = np.array(json.load(open(tmp_path / "training_scale.json")))
    np.testing.assert_allclose(scale, np.linalg.norm(xyz[:, 10] - xyz[:, 9], axis=1), rtol=1e-6)
    meta = json.load(open(tmp_path / "handcap_meta.json"))
    assert meta["hand_model"] == "open_hand" and len(meta["is_left"]) == 3
    image = cv2.imread(str(tmp_path / "training" / "rgb" / "00000001.jpg"))
    assert image.shape == (64, 64, 3)
    reference = SyntheticHands(count=3, seed=2, size=64)[1]["image"].permute(1, 2, 0).numpy()[..., ::-1]
    assert np.abs(image.astype(int) - reference.astype(int)).mean() < 6    # the same picture, JPEG'd
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp")]
