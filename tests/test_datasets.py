"""Dataset readers against small fixture folders written in the official FreiHAND / RHD layouts."""

import json
import os
import pickle

import cv2
import numpy as np
import pytest
import torch

from training.datasets import RHD, FreiHAND
from training.datasets.common import open_hand_vertex_count
from training.sample import RAW_KEYS

K = np.array([[400.0, 0.0, 32.0], [0.0, 400.0, 24.0], [0.0, 0.0, 1.0]])


def _hand_xyz(rng, depth=0.6):
    """(21, 3) points around (0, 0, depth) metres."""
    return np.array([0.0, 0.0, depth]) + rng.normal(scale=0.03, size=(21, 3))


def _write_freihand(root, split, num_annotations, copies, masks=True, mano=None, verts=None, seed=0):
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(root, split, "rgb"))
    for i in range(num_annotations * copies):       # image i is filled with the value 10 * i
        cv2.imwrite(os.path.join(root, split, "rgb", f"{i:08d}.jpg"), np.full((48, 64, 3), 10 * i, np.uint8))
    if masks:
        os.makedirs(os.path.join(root, split, "mask"))
        for a in range(num_annotations):             # mask a: the left a+1 columns x 8 are hand
            mask = np.zeros((48, 64), np.uint8)
            mask[:, : 8 * (a + 1)] = 255
            cv2.imwrite(os.path.join(root, split, "mask", f"{a:08d}.jpg"), mask)
    xyz = [_hand_xyz(rng).tolist() for _ in range(num_annotations)]
    files = {"K": [K.tolist()] * num_annotations, "xyz": xyz, "scale": [0.1] * num_annotations}
    if mano is not None:
        files["mano"] = mano
    if verts is not None:
        files["verts"] = verts
    for name, data in files.items():
        with open(os.path.join(root, f"{split}_{name}.json"), "w") as f:
            json.dump(data, f)
    return np.array(xyz, np.float32)


def test_freihand_wraps_images_onto_annotations(tmp_path):
    root = str(tmp_path)
    mano = [[list(np.arange(61) * 0.01)] for _ in range(3)]        # real MANO params: ignored
    xyz = _write_freihand(root, "training", num_annotations=3, copies=4, mano=mano)
    data = FreiHAND(root, "training")
    assert len(data) == 12
    sample = data[7]                                                # annotation 7 % 3 = 1
    assert set(sample) == set(RAW_KEYS)
    assert abs(float(sample["image"].float().mean()) - 70) < 2     # image 7 itself
    np.testing.assert_allclose(sample["joints_3d"].numpy(), xyz[1], atol=1e-6)
    uvw = xyz[1] @ K.T
    np.testing.assert_allclose(sample["keypoints_2d"].numpy(), uvw[:, :2] / uvw[:, 2:], atol=1e-3)
    np.testing.assert_allclose(sample["K"].numpy(), K)
    mask = sample["mask"].numpy()
    assert mask.dtype == np.uint8 and mask[:, :15].all() and not mask[:, 17:].any()   # mask 1: 16 columns
    assert sample["image"].shape == (3, 48, 64) and sample["image"].dtype == torch.uint8
    assert bool(sample["has_mask"]) and bool(sample["has_3d"]) and not bool(sample["has_mesh"])
    assert not bool(sample["is_left"])
    assert sample["vertices"].shape == (open_hand_vertex_count(), 3) and not sample["vertices"].any()
    assert not sample["pose"].any() and not sample["betas"].any()
    with pytest.raises(IndexError):
        data[12]


def test_freihand_evaluation_without_masks(tmp_path):
    root = str(tmp_path)
    _write_freihand(root, "evaluation", num_annotations=2, copies=1, masks=False)
    sample = FreiHAND(root, "evaluation")[1]
    assert not bool(sample["has_mask"]) and not sample["mask"].any() and sample["mask"].shape == (48, 64)


def test_freihand_rejects_inconsistent_counts(tmp_path):
    root = str(tmp_path)
    _write_freihand(root, "training", num_annotations=3, copies=1)
    os.remove(os.path.join(root, "training", "rgb", "00000002.jpg"))
    with pytest.raises(ValueError, match="not a multiple"):
        FreiHAND(root, "training")


def test_freihand_layout_of_our_renders_has_open_hand_meshes(tmp_path):
    root = str(tmp_path)
    V = open_hand_vertex_count()
    rng = np.random.default_rng(1)
    rows = rng.normal(size=(2, 61)).round(4)
    verts = rng.normal(size=(2, V, 3)).round(4)
    _write_freihand(root, "training", num_annotations=2, copies=1, mano=rows.tolist(), verts=verts.tolist())
    with open(os.path.join(root, "handcap_meta.json"), "w") as f:
        json.dump({"hand_model": "open_hand", "is_left": [False, True]}, f)
    data = FreiHAND(root, "training")
    right, left = data[0], data[1]
    assert bool(left["has_mesh"]) and bool(left["is_left"]) and not bool(right["is_left"])
    np.testing.assert_allclose(left["pose"].numpy(), rows[1, :48].reshape(16, 3), atol=1e-6)
    np.testing.assert_allclose(left["betas"].numpy(), rows[1, 48:58], atol=1e-6)
    np.testing.assert_allclose(left["vertices"].numpy(), verts[1], atol=1e-6)
    with open(os.path.join(root, "handcap_meta.json"), "w") as f:
        json.dump({"hand_model": "open_hand", "prefix": "evaluation", "is_left": [False, True]}, f)
    with pytest.raises(ValueError, match="evaluation"):
        FreiHAND(root, "training")


def _write_rhd(root, split):
    """Two 32x32 samples: in 0 the left hand has more visible keypoints, in 1 the right hand."""
    os.makedirs(os.path.join(root, split, "color"))
    os.makedirs(os.path.join(root, split, "mask"))
    annotations = {}
    for sid in range(2):
        uv_vis = np.zeros((42, 3))
        uv_vis[:, 0] = np.arange(42)                 # u = RHD keypoint index
        uv_vis[:, 1] = 100 + np.arange(42)
        visible_left = 15 if sid == 0 else 5
        uv_vis[:visible_left, 2] = 1
        uv_vis[21:21 + (20 - visible_left), 2] = 1
        xyz = np.stack([np.arange(42) * 0.01, np.zeros(42), np.full(42, 0.5)], axis=1)
        annotations[sid] = {"uv_vis": uv_vis.astype(np.float32), "xyz": xyz.astype(np.float32),
                            "K": K.astype(np.float32)}
        labels = np.zeros((32, 32), np.uint8)
        labels[:, :4] = 1                            # person
        labels[:8, 8:16] = 5                         # a left-hand part
        labels[:8, 16:20] = 17                       # another left-hand part
        labels[16:, 8:16] = 20                       # a right-hand part
        labels[16:, 16:20] = 33
        cv2.imwrite(os.path.join(root, split, "mask", f"{sid:05d}.png"), labels)
        cv2.imwrite(os.path.join(root, split, "color", f"{sid:05d}.png"), np.full((32, 32, 3), 50 * (sid + 1), np.uint8))
    with open(os.path.join(root, split, f"anno_{split}.pickle"), "wb") as f:
        pickle.dump(annotations, f)


def test_rhd_reorders_keypoints_and_selects_the_hand(tmp_path):
    root = str(tmp_path)
    _write_rhd(root, "evaluation")
    data = RHD(root, "evaluation")
    assert len(data) == 2
    left, right = data[0], data[1]
    assert bool(left["is_left"]) and not bool(right["is_left"])
    # FreiHAND order: wrist, thumb base..tip, index base..tip, ...; RHD: wrist, thumb tip..base, ...
    u = left["keypoints_2d"][:, 0].numpy()
    assert u[0] == 0 and u[1] == 4 and u[4] == 1 and u[5] == 8 and u[8] == 5 and u[17] == 20 and u[20] == 17
    u = right["keypoints_2d"][:, 0].numpy()
    assert u[0] == 21 and u[1] == 25 and u[4] == 22 and u[20] == 38
    np.testing.assert_allclose(right["keypoints_2d"][:, 1].numpy(), 100 + u)
    np.testing.assert_allclose(right["joints_3d"][:, 0].numpy(), u * 0.01, atol=1e-6)
    # mask: only that hand's labels (2-17 left, 18-33 right)
    expected_left = np.zeros((32, 32), np.uint8)
    expected_left[:8, 8:20] = 1
    np.testing.assert_array_equal(left["mask"].numpy(), expected_left)
    expected_right = np.zeros((32, 32), np.uint8)
    expected_right[16:, 8:20] = 1
    np.testing.assert_array_equal(right["mask"].numpy(), expected_right)
    assert abs(float(right["image"].float().mean()) - 100) < 1
    assert bool(left["has_mask"]) and bool(left["has_3d"]) and not bool(left["has_mesh"])
    assert left["vertices"].shape == (open_hand_vertex_count(), 3)


def test_rhd_both_hands(tmp_path):
    root = str(tmp_path)
    _write_rhd(root, "training")
    both = RHD(root, "training", hands="both")
    assert [(sid, is_left) for sid, is_left in both.items] == [(0, True), (0, False), (1, True), (1, False)]
    assert len(RHD(root, "training", hands="both", min_visible=10)) == 2   # 15 and 15 visible
