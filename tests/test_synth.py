"""Synthetic hands: the sample contract, exact ground truth (checked independently of the code
that made it), placement, held-out settings, determinism, and sharding over workers and ranks."""

import hashlib

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from core.hand_model import KEYPOINT_ORDER, load_hand_model
from training.sample import RAW_KEYS
from training.synth import SyntheticHands
from training.synth.backgrounds import FAMILIES
from training.synth.dataset import WORKER_CONTEXT
from training.synth.scene import FOCAL, HELDOUT_TONE_CENTRES, HELDOUT_TONE_HALF_WIDTH, SceneSampler

from .conftest import numpy_lbs

SIZE = 128
COUNT = 16


@pytest.fixture(scope="module")
def rendered():
    return SyntheticHands(count=COUNT, seed=3, size=SIZE).render(range(COUNT))


@pytest.fixture(scope="module")
def models():
    return {side: load_hand_model("open", side) for side in ("right", "left")}


def digest(sample: dict) -> str:
    return hashlib.md5(sample["image"].numpy().tobytes()).hexdigest()


def test_contract(rendered):
    dtypes = {"image": torch.uint8, "mask": torch.uint8, "keypoints_2d": torch.float32, "joints_3d": torch.float32,
              "vertices": torch.float32, "pose": torch.float32, "betas": torch.float32, "K": torch.float32,
              "is_left": torch.bool, "has_mask": torch.bool, "has_3d": torch.bool, "has_mesh": torch.bool}
    shapes = {"image": (3, SIZE, SIZE), "mask": (SIZE, SIZE), "keypoints_2d": (21, 2), "joints_3d": (21, 3),
              "vertices": (1609, 3), "pose": (16, 3), "betas": (10,), "K": (3, 3)}
    for r in rendered:
        s = r.sample
        assert set(s) == set(RAW_KEYS)
        assert {k: s[k].dtype for k in dtypes} == dtypes
        assert {k: tuple(s[k].shape) for k in shapes} == shapes
        assert s["has_mask"] and s["has_3d"] and s["has_mesh"]
        assert set(s["mask"].unique().tolist()) <= {0, 1} and s["mask"].sum() > 50
        assert s["image"].float().std() > 5  # a picture, not a blank
    assert {bool(r.sample["is_left"]) for r in rendered} == {True, False}
    assert (np.abs(np.stack([r.sample["betas"].numpy() for r in rendered])) <= 2.5).all()


def test_keypoints_are_the_projection_of_the_3d_joints(rendered):
    for r in rendered:
        K, X = r.sample["K"].double().numpy(), r.sample["joints_3d"].double().numpy()
        u = K[0, 0] * X[:, 0] / X[:, 2] + K[0, 1] * X[:, 1] / X[:, 2] + K[0, 2]
        v = K[1, 1] * X[:, 1] / X[:, 2] + K[1, 2]
        np.testing.assert_allclose(r.sample["keypoints_2d"].numpy(), np.stack([u, v], 1), atol=1e-3)


def test_ground_truth_is_the_hand_model(rendered, models):
    """vertices and joints_3d are the reference LBS (tests/reference_lbs.py) of pose, betas, transl."""
    for r in rendered[:6]:
        s = r.sample
        model = models["left" if s["is_left"] else "right"]
        verts, joints = numpy_lbs(model, s["betas"].double().numpy(), s["pose"].double().numpy(), r.transl)
        tips = verts[model.tip_vertex_ids]
        keypoints = np.concatenate([joints, tips])[KEYPOINT_ORDER]
        np.testing.assert_allclose(s["vertices"].numpy(), verts, atol=2e-6)
        np.testing.assert_allclose(s["joints_3d"].numpy(), keypoints, atol=2e-6)


def test_placement(rendered):
    """The hand's box fills 40-90 % of the image side, lies inside it, at a distance of ~0.3-1 m."""
    for r in rendered:
        s = r.sample
        K, V = s["K"].double().numpy(), s["vertices"].double().numpy()
        pixels = (V @ K.T)[:, :2] / V[:, 2:3]
        fill = (pixels.max(0) - pixels.min(0)).max() / SIZE
        assert 0.37 < fill < 0.93, fill
        assert (pixels > 0).all() and (pixels < SIZE - 1).all()
        assert 0.15 < V[:, 2].mean() < 1.5


def test_mask_is_the_rendered_hand(rendered, models):
    """The mask is the projected hand mesh (an independent cv2 rasterisation) less occluders and
    the forearm in front of it; the projected vertices of most hands land inside it."""
    near = np.ones((3, 3), np.uint8)
    whole = 0
    for r in rendered:
        s = r.sample
        K, V = s["K"].double().numpy(), s["vertices"].double().numpy()
        pixels = (V @ K.T)[:, :2] / V[:, 2:3]
        raster = np.zeros((SIZE, SIZE), np.uint8)
        faces = models["left" if s["is_left"] else "right"].faces
        for triangle in np.round(pixels[faces] * 16).astype(np.int32):   # one by one: fillPoly would XOR overlaps
            cv2.fillConvexPoly(raster, triangle, 1, shift=4)
        mask = s["mask"].numpy()
        assert (mask & (1 - cv2.dilate(raster, near))).sum() == 0        # no mask pixel off the hand
        inside = cv2.dilate(mask, near)[np.round(pixels[:, 1]).astype(int), np.round(pixels[:, 0]).astype(int)]
        assert inside.mean() > 0.3                                       # occluders hide at most half the hand
        whole += inside.mean() > 0.99
    assert whole >= COUNT // 3                                           # about half the samples have no occluder


def test_same_index_same_sample_in_any_batch():
    a = SyntheticHands(count=8, seed=7, size=64)
    b = SyntheticHands(count=8, seed=7, size=64)
    batch = a.render([3, 4, 5, 6])
    single = b.render([5])[0]
    assert torch.equal(batch[2].sample["image"], single.sample["image"])
    assert torch.equal(batch[2].sample["mask"], single.sample["mask"])
    assert torch.equal(batch[2].sample["joints_3d"], single.sample["joints_3d"])
    assert digest(batch[0].sample) != digest(batch[1].sample)
    assert digest(a[0]) != digest(SyntheticHands(count=8, seed=8, size=64)[0])
    assert digest(a[0]) != digest(SyntheticHands(count=8, seed=7, split="heldout", size=64)[0])


def test_heldout_settings_are_never_drawn_in_training():
    for split in ("train", "heldout"):
        sampler = SceneSampler(split, seed=1, size=SIZE)
        scenes = [sampler.sample(i) for i in range(300)]
        focal = np.array([s.K[0, 0] for s in scenes]) * 224 / SIZE
        in_heldout_band = (focal >= FOCAL["heldout"][0][0]) & (focal <= FOCAL["heldout"][0][1])
        tone_distance = np.array([np.abs(s.skin.tone - HELDOUT_TONE_CENTRES).min() for s in scenes])
        lights = {len(s.lighting.directions) for s in scenes}
        if split == "train":
            assert not in_heldout_band.any() and (tone_distance >= HELDOUT_TONE_HALF_WIDTH).all() and lights == {2}
            assert focal.min() < 300 and focal.max() > 900
        else:
            assert in_heldout_band.all() and (tone_distance < HELDOUT_TONE_HALF_WIDTH).all() and lights == {3}
        assert 0.3 < np.mean([s.is_left for s in scenes]) < 0.7
    assert not set(FAMILIES["train"]) & set(FAMILIES["heldout"])


def test_backgrounds_folder(tmp_path):
    rng = np.random.default_rng(0)
    for k in range(2):
        cv2.imwrite(str(tmp_path / f"photo{k}.jpg"), (rng.random((90, 160, 3)) * 255).astype(np.uint8))
    samples = SyntheticHands(count=4, seed=0, size=64, backgrounds=str(tmp_path)).render(range(4))
    assert len(samples) == 4
    with pytest.raises(ValueError, match="not a folder"):
        SyntheticHands(backgrounds=str(tmp_path / "missing"))


def test_workers_share_the_work_in_order():
    dataset = SyntheticHands(count=6, seed=1, size=64)
    direct = [digest(dataset[i]) for i in range(6)]
    loader = DataLoader(dataset, batch_size=None, num_workers=2, multiprocessing_context=WORKER_CONTEXT)
    assert [digest(s) for s in loader] == direct


def test_ranks_take_disjoint_slices(monkeypatch):
    dataset = SyntheticHands(count=7, seed=2, size=48, batch=2)
    direct = [digest(dataset[i]) for i in range(7)]
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda: 3)
    seen = []
    for rank in range(3):
        monkeypatch.setattr(torch.distributed, "get_rank", lambda rank=rank: rank)
        seen.append([digest(s) for s in dataset])
    assert seen == [direct[0::3], direct[1::3], direct[2::3]]


def test_endless_stream():
    stream = iter(SyntheticHands(count=None, seed=4, size=48, batch=3))
    assert len({digest(next(stream)) for _ in range(5)}) == 5
    with pytest.raises(TypeError):
        len(SyntheticHands())
