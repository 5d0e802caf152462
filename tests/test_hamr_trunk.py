"""HAMR and the baseline on MediaPipe's frozen hand-landmark trunk: config, shapes, frozen trunk,
cached trunk outputs, head-only weights files, training on a feature cache, the engine's default
network and its upright crops."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

from core.crops import crop_matrix, normalize_image, upright_angle
from core.networks import NetworkConfig, build_network, load_weights, save_weights
from core.networks.landmark_trunk import TRUNK_KEYS
from core.networks.weights import read_metadata

TRUNK = dict(backbone="mediapipe_hand", input_size=224)


@pytest.fixture(scope="module")
def hamr():
    torch.manual_seed(0)
    return build_network(NetworkConfig(arch="hamr", **TRUNK)).eval()


def test_config_declares_its_crops():
    trunk, resnet = NetworkConfig(**TRUNK), NetworkConfig(backbone="resnet18", input_size=96)
    assert (trunk.pretrained_trunk, trunk.input_normalization, trunk.upright_crops) == (True, "unit", True)
    assert (resnet.pretrained_trunk, resnet.input_normalization, resnet.upright_crops) == (False, "imagenet", False)
    with pytest.raises(ValueError, match="224"):
        NetworkConfig(backbone="mediapipe_hand", input_size=128)


def test_normalize_image_unit_and_imagenet():
    rgb = np.full((2, 4, 4, 3), 255, np.uint8)
    rgb[..., 0] = 0
    unit = normalize_image(rgb, "unit")
    assert unit.shape == (2, 3, 4, 4) and float(unit[:, 0].max()) == 0.0 and float(unit[:, 1].min()) == 1.0
    assert torch.allclose(normalize_image(rgb)[:, 1], torch.full((2, 4, 4), (1 - 0.456) / 0.224))
    with pytest.raises(ValueError):
        normalize_image(rgb, "bgr")


def test_forward_shapes_and_cached_inputs_agree(hamr):
    images = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        out = hamr(images)
        trunk = hamr.trunk(images)
        cached = hamr({k: (v.half() if k == "embedding" else v) for k, v in trunk.items()})
    assert set(trunk) == set(TRUNK_KEYS) and trunk["embedding"].shape == (2, 1152)
    assert out["joints_3d"].shape == (2, 21, 3) and out["pose_6d"].shape == (2, 16, 6)
    assert out["betas"].shape == (2, 10) and out["camera"].shape == (2, 3) and out["keypoints_2d"].shape == (2, 21, 2)
    assert out["landmarks_2d"].shape == (2, 21, 2) and out["heatmaps"] == []
    assert torch.allclose(out["joints_3d"][:, 0], torch.zeros(2, 3))
    # float16 storage of the embedding (as in a cache) moves the joints by far less than a millimetre
    assert (cached["joints_3d"] - out["joints_3d"]).abs().max() < 1e-4
    with pytest.raises(ValueError, match="lack"):
        hamr({"embedding": trunk["embedding"]})


def test_trunk_is_frozen_and_stays_in_eval_mode():
    model = build_network(NetworkConfig(arch="hamr", **TRUNK)).train()
    assert not model.trunk.training and model.regressor.training
    out = model(torch.rand(2, 3, 224, 224))
    out["joints_3d"].sum().backward()
    assert all(p.grad is None for p in model.trunk.parameters())
    assert model.regressor.dec_pose.weight.grad is not None


@pytest.mark.parametrize("arch,use_heatmaps", [("hamr", False), ("baseline", True)])
def test_ablation_and_baseline_build(arch, use_heatmaps):
    model = build_network(NetworkConfig(arch=arch, use_heatmaps=use_heatmaps, **TRUNK)).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 224, 224))
    assert out["joints_3d"].shape == (1, 21, 3) and out["keypoints_2d"].shape == (1, 21, 2)


def test_weights_hold_the_head_only_and_round_trip(hamr, tmp_path):
    path = str(tmp_path / "trunk.safetensors")
    save_weights(hamr, hamr.config, path, half=True)
    from safetensors import safe_open
    with safe_open(path, framework="pt") as f:
        keys = list(f.keys())
    assert keys and not any(k.startswith("trunk.") for k in keys)
    assert os.path.getsize(path) < 8e6                        # the trunk (2.7 MB in float16) is not in it
    meta = read_metadata(path)
    assert "Apache-2.0" in meta["trunk_notice"] and "core/perception/weights" in meta["trunk"]
    loaded, config = load_weights(path)
    assert config == hamr.config
    images = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        a, b = hamr(images), loaded(images)
    assert (a["joints_3d"] - b["joints_3d"]).abs().max() < 2e-4       # float16 storage of the head
    assert torch.equal(a["landmarks_2d"], b["landmarks_2d"])           # the same trunk


def test_a_tiny_feature_cache_trains(tmp_path):
    """Render 6 hands, cache 12 crops through the trunk, train the head on them: the loss falls."""
    from training.cache_features import build_cache, load_cache, save_cache
    from training.config import load_config
    from training.train import train

    path = save_cache(build_cache(6, copies=2, seed=3, progress=False), str(tmp_path / "feats.pt"))
    cache = load_cache(path)
    assert cache["trunk"]["embedding"].dtype == torch.float16 and cache["trunk"]["embedding"].shape == (12, 1152)
    assert cache["targets"]["joints_3d"].shape == (12, 21, 3) and cache["targets"]["has_mask"].all()
    # the cached masks (64 x 64, Lseg's size) cover the hand: its knuckles lie inside them
    masks = cache["targets"]["mask"].float()
    assert masks.shape == (12, 64, 64) and 0 <= masks.min() and masks.max() <= 1
    knuckles = ((cache["targets"]["keypoints_2d"][:, [5, 9, 13, 17]] + 1) / 2 * 64).long().clamp(0, 63)   # (12, 4, 2)
    inside = masks[torch.arange(12)[:, None], knuckles[..., 1], knuckles[..., 0]]
    assert (inside > 0.5).float().mean() > 0.8 and masks.mean() < 0.6
    # the cached 3D targets are root-relative right hands, as the crop samples of training/sample.py
    assert torch.allclose(cache["targets"]["joints_3d"][:, 0], torch.zeros(12, 3))
    out = str(tmp_path / "run")
    cfg = load_config("configs/hamr_trunk.toml", [f'data.train=["cache:{path}"]', f'run.out="{out}"',
                                                  "optim.steps=60", "optim.batch_size=12", "optim.warmup_steps=5",
                                                  "data.val_count=0", "run.log_every=10", "loss.silhouette=10.0"])
    weights = train(cfg, restart=True)
    import csv
    with open(os.path.join(out, "metrics.csv")) as f:
        losses = [float(r["train/joints_3d"]) for r in csv.DictReader(f) if r.get("train/joints_3d")]
    assert len(losses) == 6 and losses[-1] < 0.7 * losses[0], losses
    with open(os.path.join(out, "metrics.csv")) as f:
        silhouette = [float(r["train/silhouette"]) for r in csv.DictReader(f) if r.get("train/silhouette")]
    assert len(silhouette) == 6 and 0 < silhouette[-1] < 1          # Lseg ran on the cached masks
    assert load_weights(weights)[1].backbone == "mediapipe_hand"


def test_cache_of_another_hand_model_is_refused(tmp_path):
    from training.cache_features import FORMAT, load_cache, save_cache
    path = save_cache({"format": FORMAT, "trunk": {}, "targets": {}, "meta": {"hand_model": "0" * 16}},
                      str(tmp_path / "old.pt"))
    with pytest.raises(ValueError, match="another hand model"):
        load_cache(path)


def test_upright_angle_turns_the_wrist_below_the_middle_knuckle():
    keypoints = np.zeros((21, 2))
    keypoints[9] = [30.0, 40.0]                                # knuckle to the lower right of the wrist
    for flip in (False, True):
        matrix = crop_matrix(np.zeros(2), 100.0, 100, upright_angle(keypoints, flip), flip)
        wrist, knuckle = (keypoints[[0, 9]] @ matrix[:, :2].T + matrix[:, 2])
        direction = (knuckle - wrist) / np.linalg.norm(knuckle - wrist)
        assert np.allclose(direction, [0.0, -1.0], atol=1e-9)


def test_unrotate_matches_the_axis_aligned_crop():
    """Targets of an upright crop, turned back by the engine's ``unrotate``, equal those of the
    axis-aligned crop of the same hand (training.augment computes both independently)."""
    from core.engine.network import unrotate
    from core.hand_model.rotations import axis_angle_to_matrix
    from training.augment import EvalTransform
    from training.losses import camera_from_2d3d

    rng = np.random.default_rng(0)
    keypoints = rng.uniform(40, 120, (21, 2)).astype(np.float32)
    keypoints[9] = keypoints[0] + [25.0, 18.0]
    raw = {"image": np.zeros((3, 160, 160), np.uint8), "mask": np.zeros((160, 160), np.uint8),
           "keypoints_2d": keypoints, "joints_3d": rng.normal(0, 0.03, (21, 3)).astype(np.float32) + [0, 0, 0.5],
           "vertices": np.zeros((5, 3), np.float32), "pose": rng.normal(0, 0.5, (16, 3)).astype(np.float32),
           "betas": np.zeros(10, np.float32), "K": np.eye(3, dtype=np.float32), "is_left": True,
           "has_mask": False, "has_3d": True, "has_mesh": True}

    def as_output(crop):
        camera = camera_from_2d3d(crop["keypoints_2d"][None], crop["joints_3d"][None])[0]
        return {"joints_3d": crop["joints_3d"].numpy()[None], "keypoints_2d": crop["keypoints_2d"].numpy()[None],
                "camera": camera.numpy()[None], "pose": crop["pose"].numpy()[None]}

    flat = as_output(EvalTransform(96)(raw))
    angle = upright_angle(keypoints, flip=True)
    assert abs(angle) > 0.3
    back = unrotate(as_output(EvalTransform(96, upright=True)(raw)), np.array([angle]))
    for key in ("joints_3d", "keypoints_2d", "camera"):
        assert np.allclose(back[key], flat[key], atol=1e-5), key
    assert torch.allclose(axis_angle_to_matrix(torch.from_numpy(back["pose"][0, :1]).double()),
                          axis_angle_to_matrix(torch.from_numpy(flat["pose"][0, :1]).double()), atol=1e-5)
    assert np.allclose(back["pose"][0, 1:], flat["pose"][0, 1:])


def test_engine_default_is_the_trunk_network():
    from core.engine.network import HandNetwork, resolve_weights
    path = resolve_weights(None, torch.device("cpu"))
    assert os.path.basename(path) == "hamr_trunk.safetensors"
    network = HandNetwork(path, torch.device("cpu"))
    assert network.input_size == 224 and network.normalization == "unit" and network.upright
    crops = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    out = network.predict(crops, angles=np.array([0.0, math.pi / 2]))
    assert out["pose"].shape == (2, 16, 3) and out["joints_3d"].shape == (2, 21, 3)
    assert out["heatmap_keypoints"].shape == (2, 21, 2) and out["heatmap_confidence"].shape == (2, 21)
    assert os.path.isfile(resolve_weights("fast", torch.device("cpu")))       # kept for comparison
