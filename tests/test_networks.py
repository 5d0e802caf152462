"""The networks: config, HAMR and baseline outputs, gradients, heatmap decoding, weights files."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from core.networks import (HAMR, Baseline, NetworkConfig, WeightsError, build_network, keypoints_from_heatmaps,
                           load_weights, render_heatmaps, save_weights)
from core.networks.camera import HAND_FILL, project

SIZE = 64  # the smallest input the trunk's stride 32 allows comfortably: keeps the tests fast


@pytest.fixture(scope="module")
def hamr_config() -> NetworkConfig:
    return NetworkConfig(arch="hamr", backbone="resnet18", input_size=SIZE)


@pytest.fixture(scope="module")
def hamr(hamr_config) -> HAMR:
    torch.manual_seed(0)
    return build_network(hamr_config).eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))


def test_config_defaults_round_trip_and_errors():
    config = NetworkConfig(input_size=128)
    assert config.heatmap_size == 32 and config.num_iterations == 3 and config.use_heatmaps
    assert NetworkConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    for bad in ({"arch": "vit"}, {"backbone": "resnet9"}, {"input_size": 100}, {"num_iterations": 0}):
        with pytest.raises(ValueError):
            NetworkConfig(**bad)
    with pytest.raises(ValueError, match="unknown network config keys"):
        NetworkConfig.from_dict({**config.to_dict(), "dropout": 0.1})


def test_hamr_outputs(hamr, images):
    with torch.no_grad():
        out = hamr(images)
    B, V = 2, hamr.hand_layer.v_template.shape[0]
    assert [h.shape for h in out["heatmaps"]] == [(B, 21, SIZE // 4, SIZE // 4)] * 2
    shapes = {"pose_6d": (B, 16, 6), "rotmats": (B, 16, 3, 3), "betas": (B, 10), "camera": (B, 3),
              "joints_3d": (B, 21, 3), "vertices": (B, V, 3), "keypoints_2d": (B, 21, 2)}
    assert {k: tuple(out[k].shape) for k in shapes} == shapes
    assert torch.all(out["joints_3d"][:, 0] == 0)                      # root-relative
    torch.testing.assert_close(out["keypoints_2d"], project(out["joints_3d"], out["camera"]))
    rotmats = out["rotmats"]
    torch.testing.assert_close(rotmats @ rotmats.transpose(-1, -2), torch.eye(3).expand_as(rotmats), atol=1e-5, rtol=0)
    # iterations: one dict per step, the last is the final output, each step changes the params
    assert len(out["iterations"]) == 3
    assert torch.equal(out["iterations"][-1]["pose_6d"], out["pose_6d"])
    assert not torch.equal(out["iterations"][0]["camera"], out["iterations"][1]["camera"])


def test_hamr_initial_hand_fills_the_crop(hamr, images):
    """At init the regressor's updates are tiny: palm to the camera, fingers up, hand framed in the crop."""
    with torch.no_grad():
        kp = hamr(images)["keypoints_2d"]
    extent = (kp.amax(1) - kp.amin(1)).amax(-1)
    centre = (kp.amax(1) + kp.amin(1)) / 2
    assert torch.allclose(extent, torch.full_like(extent, 2 * HAND_FILL), atol=0.1)
    assert centre.abs().max() < 0.1
    assert torch.all(kp[:, 12, 1] < kp[:, 0, 1])                         # middle tip above the wrist


def test_hamr_gradients_reach_backbone_decoder_and_regressor(hamr_config, images):
    model = build_network(hamr_config).train()
    out = model(images)
    loss = out["joints_3d"].square().sum() + sum(h.square().mean() for h in out["heatmaps"]) \
        + sum(it["camera"].square().sum() for it in out["iterations"])
    loss.backward()
    for name in ("trunk.stem.0.weight", "trunk.layer4.1.conv2.weight", "decoder.smooth.0.weight",
                 "stage2.up0.0.weight", "encoder.0.0.weight", "regressor.mlp.0.weight", "regressor.dec_pose.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_hamr_without_heatmaps_and_other_heatmap_size(images):
    ablation = build_network(NetworkConfig(input_size=SIZE, use_heatmaps=False, num_iterations=2)).eval()
    assert not any(n.startswith(("decoder", "stage2", "encoder")) for n, _ in ablation.named_parameters())
    with torch.no_grad():
        out = ablation(images)
    assert out["heatmaps"] == [] and len(out["iterations"]) == 2 and out["joints_3d"].shape == (2, 21, 3)
    resized = build_network(NetworkConfig(input_size=SIZE, heatmap_size=24)).eval()
    with torch.no_grad():
        assert resized(images)["heatmaps"][-1].shape == (2, 21, 24, 24)


def test_hamr_runs_under_bf16_autocast_and_channels_last(hamr, images):
    model = build_network(hamr.config).eval().to(memory_format=torch.channels_last)
    model.load_state_dict(hamr.state_dict())
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(images.contiguous(memory_format=torch.channels_last))
    assert out["joints_3d"].dtype == torch.float32 and out["vertices"].dtype == torch.float32
    with torch.no_grad():
        reference = hamr(images)
    assert (out["joints_3d"] - reference["joints_3d"]).abs().max() < 5e-3  # metres


def test_baseline(images):
    model = build_network(NetworkConfig(arch="baseline", backbone="resnet50", input_size=SIZE))
    assert isinstance(model, Baseline) and model.trunk.channels[3] == 2048
    out = model(images)
    assert out["joints_3d"].shape == (2, 21, 3) and torch.all(out["joints_3d"][:, 0] == 0)
    torch.testing.assert_close(out["keypoints_2d"], project(out["joints_3d"], out["camera"]))
    out["joints_3d"].abs().sum().backward()
    assert model.trunk.stem[0].weight.grad.abs().sum() > 0


def test_keypoints_from_heatmaps_inverts_render_heatmaps():
    keypoints = torch.tensor([[[0.123, -0.456], [-0.9, 0.7], [0.0, 0.0], [0.51, 0.52]]])
    decoded, confidence = keypoints_from_heatmaps(render_heatmaps(keypoints, 32, sigma=1.5))
    torch.testing.assert_close(decoded, keypoints, atol=1e-4, rtol=0)
    assert torch.all(confidence > 0.8) and torch.all(confidence <= 1)
    # a keypoint on the border pixel: argmax only, still within half a pixel
    decoded, _ = keypoints_from_heatmaps(render_heatmaps(torch.tensor([[[-0.99, 0.0]]]), 32))
    assert abs(decoded[0, 0, 0] + 0.99) <= 1 / 32


def test_weights_round_trip(tmp_path, hamr, images):
    path = str(tmp_path / "hamr.safetensors")
    save_weights(hamr, hamr.config, path, extra_metadata={"step": 7})
    assert not any(k.startswith("hand_layer") for k in hamr.state_dict())  # the hand model is not stored
    loaded, config = load_weights(path)
    assert config == hamr.config and not loaded.training
    with torch.no_grad():
        a, b = hamr(images), loaded(images)
    for key in ("heatmaps", "joints_3d", "vertices", "keypoints_2d"):
        assert all(torch.equal(x, y) for x, y in zip(a[key], b[key])) if key == "heatmaps" else torch.equal(a[key], b[key])
    from core.networks.weights import read_metadata
    meta = read_metadata(path)
    assert meta["extra"] == {"step": 7} and meta["input_size"] == str(SIZE) and meta["hand_model"] == "open"

    half = str(tmp_path / "hamr_half.safetensors")
    save_weights(hamr, hamr.config, half, half=True)
    loaded_half, _ = load_weights(half)
    with torch.no_grad():
        c = loaded_half(images)
    assert (c["joints_3d"] - a["joints_3d"]).abs().max() < 1e-2
    assert (c["keypoints_2d"] - a["keypoints_2d"]).abs().max() < 1e-2
    assert list(tmp_path.iterdir()) and not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_weights_errors(tmp_path, hamr):
    with pytest.raises(WeightsError, match="no such weights file"):
        load_weights(str(tmp_path / "missing.safetensors"))
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file at all")
    with pytest.raises(WeightsError, match="not a safetensors file"):
        load_weights(str(garbage))
    plain = str(tmp_path / "plain.safetensors")
    save_file({"x": torch.zeros(2)}, plain)
    with pytest.raises(WeightsError, match="without handcap metadata"):
        load_weights(plain)
    # weights of a resnet18 HAMR under a config that says resnet34
    path = str(tmp_path / "hamr.safetensors")
    save_weights(hamr, hamr.config, path)
    from safetensors import safe_open
    with safe_open(path, "pt") as f:
        meta, state = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    meta["config"] = json.dumps({**hamr.config.to_dict(), "backbone": "resnet34"})
    save_file(state, path, metadata=meta)
    with pytest.raises(WeightsError, match="do not fit config"):
        load_weights(path)
    with pytest.raises(WeightsError, match="built with"):
        save_weights(hamr, NetworkConfig(input_size=128), str(tmp_path / "x.safetensors"))


def test_build_network_types():
    assert isinstance(build_network(NetworkConfig(input_size=SIZE)), HAMR)
