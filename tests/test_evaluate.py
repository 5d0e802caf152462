"""training.evaluate end to end on a tiny fake dataset (and on the real synthetic data once it exists).

The hook: ``evaluate.RAW_SOURCES["synthetic"]`` and ``evaluate.make_eval_transform`` are replaced
by fakes here, so `--data synthetic:N` reads N hand-made raw samples whose ground truth is the
network's own prediction: every metric must then be perfect.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from core.networks import NetworkConfig, build_network, save_weights
from training import evaluate
from training.sample import IMAGE_MEAN, IMAGE_STD

SIZE = 64


class FakeEvalTransform:
    """Raw sample of exactly SIZE pixels, right hands only -> crop sample: normalise, make root-relative."""

    def __init__(self, size: int, normalization: str = "imagenet", upright: bool = False):
        assert size == SIZE and normalization == "imagenet" and not upright
        self.size = size

    def __call__(self, raw: dict) -> dict:
        image = torch.as_tensor(raw["image"]).float() / 255
        image = (image - torch.tensor(IMAGE_MEAN)[:, None, None]) / torch.tensor(IMAGE_STD)[:, None, None]
        root = raw["joints_3d"][:1]
        return {"image": image, "keypoints_2d": raw["keypoints_2d"] / self.size * 2 - 1,
                "joints_3d": raw["joints_3d"] - root, "vertices": raw["vertices"] - root,
                "has_3d": raw["has_3d"], "has_mesh": raw["has_mesh"], "is_left": raw["is_left"]}


def perfect_raw_samples(model, count: int) -> list[dict]:
    """Random images whose ground truth is what ``model`` predicts for them, moved into camera space."""
    rng = np.random.default_rng(0)
    samples = []
    for i in range(count):
        image = rng.integers(0, 256, (3, SIZE, SIZE), dtype=np.uint8)
        crop = FakeEvalTransform(SIZE)({"image": image, "keypoints_2d": np.zeros((21, 2)), "joints_3d": np.zeros((21, 3)),
                                        "vertices": np.zeros((1, 3)), "has_3d": True, "has_mesh": True, "is_left": False})
        with torch.no_grad():
            out = model(crop["image"][None])
        transl = np.array([0.02, -0.01, 0.5], np.float32)
        samples.append({
            "image": image, "mask": np.zeros((SIZE, SIZE), np.uint8),
            "keypoints_2d": ((out["keypoints_2d"][0].numpy() + 1) / 2 * SIZE).astype(np.float32),
            "joints_3d": out["joints_3d"][0].numpy() + transl, "vertices": out["vertices"][0].numpy() + transl,
            "pose": np.zeros((16, 3), np.float32), "betas": np.zeros(10, np.float32),
            "K": np.array([[500, 0, 32], [0, 500, 32], [0, 0, 1]], np.float32), "is_left": False,
            "has_mask": False, "has_3d": i != 1, "has_mesh": i != 2,  # sample 1 lacks 3D, sample 2 a mesh
        })
    return samples


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    hamr_config = NetworkConfig(arch="hamr", input_size=SIZE)
    hamr = build_network(hamr_config).eval()
    save_weights(hamr, hamr_config, str(folder / "hamr.safetensors"))
    baseline_config = NetworkConfig(arch="baseline", input_size=SIZE)
    save_weights(build_network(baseline_config), baseline_config, str(folder / "baseline.safetensors"))
    return hamr, str(folder / "hamr.safetensors"), str(folder / "baseline.safetensors")


@pytest.fixture
def fake_synthetic(monkeypatch, weights):
    samples = perfect_raw_samples(weights[0], 6)
    monkeypatch.setitem(evaluate.RAW_SOURCES, "synthetic", lambda value: samples[:int(value)])
    monkeypatch.setattr(evaluate, "make_eval_transform", FakeEvalTransform)


def test_evaluate_perfect_predictions(tmp_path, weights, fake_synthetic):
    _, hamr_path, baseline_path = weights
    out, plot = tmp_path / "eval.json", tmp_path / "pck.png"
    assert evaluate.main(["--weights", hamr_path, "--weights", baseline_path, "--data", "synthetic:5",
                          "--json", str(out), "--plot", str(plot), "--batch-size", "2"]) == 0
    result = json.loads(out.read_text())
    assert result["data"] == "synthetic:5" and [m["name"] for m in result["models"]] == ["hamr", "baseline"]
    hamr = result["models"][0]
    assert hamr["arch"] == "hamr" and hamr["backbone"] == "resnet18" and hamr["input_size"] == SIZE
    assert hamr["count"] == 4 and hamr["count_mesh"] == 4                  # sample 1 has no 3D, sample 2 no mesh
    assert hamr["pa_mpjpe_mm"] < 1e-3 and hamr["pa_mpvpe_mm"] < 1e-3
    assert hamr["auc_0_50"] > 0.99 and hamr["auc_20_50"] == 1.0
    assert hamr["f5"] == 1.0 and hamr["f15"] == 1.0 and hamr["pck_2d"] == 1.0
    assert 0 <= hamr["pck_2d_heatmaps"] <= 1 and len(hamr["pck_curve"]["pck"]) == 100
    baseline = result["models"][1]
    assert baseline["arch"] == "baseline" and baseline["count"] == 4 and baseline["pa_mpjpe_mm"] > 1
    assert not {"pa_mpvpe_mm", "f5", "f15", "pck_2d_heatmaps"} & set(baseline)
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval.json", "pck.png"]  # no temporary files left


def test_evaluate_images_writes_overlays(tmp_path, weights):
    images = tmp_path / "photos"
    images.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(images / "wide.png"), rng.integers(0, 256, (50, 80, 3), dtype=np.uint8))
    cv2.imwrite(str(images / "tall.jpg"), rng.integers(0, 256, (60, 40, 3), dtype=np.uint8))
    out = tmp_path / "run.json"
    assert evaluate.main(["--weights", weights[1], "--data", f"images:{images}", "--json", str(out)]) == 0
    entry = json.loads(out.read_text())["models"][0]
    assert entry["count"] == 2 and "assumed" in entry["crop"]
    overlays = tmp_path / "run_overlays" / "hamr"
    assert entry["overlays"] == str(overlays)
    assert cv2.imread(str(overlays / "wide.png")).shape == (50, 80, 3)
    assert cv2.imread(str(overlays / "tall.png")).shape == (60, 40, 3)


@pytest.mark.parametrize("spec", ["synthetic", "synthetic:", "synthetic:x", "synthetic:0", "mnist:3",
                                  "images:/no/such/folder", "freihand:/no/such/folder", "images:."])
def test_bad_spec_is_a_clear_error(spec, tmp_path, weights, capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(["--weights", weights[1], "--data", spec, "--json", str(tmp_path / "x.json")])
    assert exit_info.value.code == 2 and "--data" in capsys.readouterr().err


def test_bad_weights_file_is_a_clear_error(tmp_path, capsys, fake_synthetic):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"junk")
    assert evaluate.main(["--weights", str(bad), "--data", "synthetic:2", "--json", str(tmp_path / "x.json")]) == 1
    assert "not a safetensors file" in capsys.readouterr().err and not (tmp_path / "x.json").exists()


def test_missing_weights_and_help(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(["--weights", str(tmp_path / "none.safetensors"), "--data", "synthetic:2", "--json", "x.json"])
    assert exit_info.value.code == 2 and "no such weights file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(["--help"])
    assert exit_info.value.code == 0 and "synthetic:N" in capsys.readouterr().out


def test_evaluate_real_synthetic_data(tmp_path, weights):
    """With training.synth and training.augment in place: the real CLI path, end to end."""
    pytest.importorskip("training.synth")
    pytest.importorskip("training.augment")
    out = tmp_path / "synthetic.json"
    assert evaluate.main(["--weights", weights[1], "--data", "synthetic:2", "--json", str(out)]) == 0
    entry = json.loads(out.read_text())["models"][0]
    assert entry["count"] == 2 and {"pa_mpjpe_mm", "auc_0_50", "auc_20_50", "pa_mpvpe_mm", "f5", "f15"} <= set(entry)
