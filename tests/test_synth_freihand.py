"""python -m training.synth: the FreiHAND folder layout (names, JSON shapes, values read back with
json and cv2), the held-out split's evaluation/* files, the contact sheet and --help."""

import json
import os

import cv2
import numpy as np
import pytest
import torch

from core.hand_model import HandLayer, load_hand_model
from training.synth import SyntheticHands
from training.synth.__main__ import main as synth_main

SIZE = 64
COUNT = 3


def read_json(path):
    with open(path) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("freihand")
    assert synth_main(["--out", str(out), "--count", str(COUNT), "--size", str(SIZE), "--seed", "2",
                       "--workers", "0"]) == 0
    return out


def test_layout_and_shapes(written):
    names = [f"{i:08d}.jpg" for i in range(COUNT)]
    assert sorted(os.listdir(written / "training" / "rgb")) == names
    assert sorted(os.listdir(written / "training" / "mask")) == names
    assert sorted(os.listdir(written)) == ["handcap_meta.json", "training", "training_K.json", "training_mano.json",
                                           "training_scale.json", "training_verts.json", "training_xyz.json"]
    shapes = {"K": (COUNT, 3, 3), "xyz": (COUNT, 21, 3), "mano": (COUNT, 1, 61), "verts": (COUNT, 1609, 3),
              "scale": (COUNT,)}
    for key, shape in shapes.items():
        assert np.array(read_json(written / f"training_{key}.json")).shape == shape
    meta = read_json(written / "handcap_meta.json")
    assert meta["hand_model"] == "open_hand" and meta["split"] == "train" and meta["seed"] == 2
    assert meta["count"] == COUNT and len(meta["is_left"]) == COUNT


def test_values_match_the_samples(written):
    reference = SyntheticHands(count=COUNT, seed=2, size=SIZE)
    xyz = np.array(read_json(written / "training_xyz.json"))
    verts = np.array(read_json(written / "training_verts.json"))
    K = np.array(read_json(written / "training_K.json"))
    scale = np.array(read_json(written / "training_scale.json"))
    mano = np.array(read_json(written / "training_mano.json"))[:, 0]
    is_left = read_json(written / "handcap_meta.json")["is_left"]
    np.testing.assert_allclose(scale, np.linalg.norm(xyz[:, 10] - xyz[:, 9], axis=1), atol=1e-6)
    for i in range(COUNT):
        s = reference[i]
        assert is_left[i] == bool(s["is_left"])
        np.testing.assert_allclose(xyz[i], s["joints_3d"].numpy(), atol=1e-6)
        np.testing.assert_allclose(verts[i], s["vertices"].numpy(), atol=1e-6)
        np.testing.assert_allclose(K[i], s["K"].numpy(), atol=1e-3)
        # the 61 parameters reproduce the 3D ground truth through the hand layer
        layer = HandLayer(load_hand_model("open", "left" if is_left[i] else "right"), dtype=torch.float64)
        out = layer(torch.tensor(mano[i, 48:58])[None], torch.tensor(mano[i, :48]).reshape(1, 16, 3),
                    torch.tensor(mano[i, 58:])[None])
        np.testing.assert_allclose(out.keypoints[0].numpy(), xyz[i], atol=1e-5)
        image = cv2.imread(str(written / "training" / "rgb" / f"{i:08d}.jpg"))
        assert image.shape == (SIZE, SIZE, 3)
        original = np.ascontiguousarray(s["image"].permute(1, 2, 0).numpy()[..., ::-1])
        luma = [cv2.cvtColor(x, cv2.COLOR_BGR2GRAY).astype(int) for x in (image, original)]
        assert np.abs(luma[0] - luma[1]).mean() < 4  # the same picture, JPEG'd (chroma is subsampled)
        mask = cv2.imread(str(written / "training" / "mask" / f"{i:08d}.jpg"), cv2.IMREAD_GRAYSCALE) >= 128
        assert (mask != s["mask"].numpy().astype(bool)).mean() < 0.01
    assert not [f for _, _, files in os.walk(written) for f in files if ".tmp" in f]


def test_heldout_writes_the_evaluation_split(tmp_path):
    assert synth_main(["--out", str(tmp_path), "--count", "1", "--size", str(SIZE), "--split", "heldout"]) == 0
    assert sorted(os.listdir(tmp_path)) == ["evaluation", "evaluation_K.json", "evaluation_mano.json",
                                            "evaluation_scale.json", "evaluation_verts.json", "evaluation_xyz.json",
                                            "handcap_meta.json"]
    assert os.listdir(tmp_path / "evaluation" / "rgb") == ["00000000.jpg"]
    assert os.listdir(tmp_path / "evaluation" / "mask") == ["00000000.jpg"]
    assert read_json(tmp_path / "handcap_meta.json")["split"] == "heldout"


def test_grid_and_help(tmp_path, capsys):
    assert synth_main(["--grid", str(tmp_path / "sheet.png")]) == 0
    sheet = cv2.imread(str(tmp_path / "sheet.png"))
    assert sheet is not None and sheet.shape[0] > 500 and sheet.shape[1] > 900
    with pytest.raises(SystemExit) as e:
        synth_main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for word in ("--out", "--count", "--split", "--seed", "--size", "--backgrounds", "--grid", "heldout", "MANO"):
        assert word in text
    with pytest.raises(SystemExit):
        synth_main(["--count", "3"])  # neither --out nor --grid
