"""MANO pickles load without chumpy or scipy: tested with pickles made here in MANO's format."""

import pickle
import sys
import types

import numpy as np
import pytest
import torch

from core.hand_model import HandLayer, HandModelError, load_hand_model
from core.hand_model.model import HandModel

from .conftest import numpy_lbs

V = 778


def _stand_in_class(module_name: str, class_name: str):
    """A class that pickles under ``module_name.class_name`` and stores its state dict."""
    module = types.ModuleType(module_name)
    cls = type(class_name, (), {})  # pickled by protocol 2 as copyreg.__newobj__(cls) + __dict__ state
    cls.__module__ = module_name
    cls.__qualname__ = class_name
    setattr(module, class_name, cls)
    return module, cls


def _fake_modules(*modules):
    """sys.modules entries for the stand-ins (replacing a real module of that name while the pickle is
    written: scipy.sparse may be loaded already) and their parent packages where missing (pickle imports them)."""
    entries = {}
    for module in modules:
        parts = module.__name__.split(".")
        for i in range(1, len(parts)):
            name = ".".join(parts[:i])
            if name not in sys.modules:
                entries.setdefault(name, types.ModuleType(name))
        entries[module.__name__] = module
    return entries


def write_fake_mano(path, seed=0, side="right"):
    """Random arrays in MANO's pickle layout: chumpy Ch objects and a scipy csc J_regressor."""
    rng = np.random.default_rng(seed)
    parents = [4294967295, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14]
    weights = rng.random((V, 16)) ** 4
    weights /= weights.sum(1, keepdims=True)
    regressor = rng.random((16, V)) * (rng.random((16, V)) < 0.05)
    regressor[:, :3] += 0.01
    regressor /= regressor.sum(1, keepdims=True)
    arrays = {
        "v_template": rng.normal(size=(V, 3)) * 0.05,
        "shapedirs": rng.normal(size=(V, 3, 10)) * 0.005,
        "posedirs": rng.normal(size=(V, 3, 135)) * 0.005,
        "weights": weights,
        "J_regressor": regressor,
        "f": rng.integers(0, V, size=(1538, 3)).astype(np.uint32),
        "kintree_table": np.array([parents, list(range(16))], dtype=np.int64),
        "hands_components": np.linalg.qr(rng.normal(size=(45, 45)))[0],
        "hands_mean": rng.normal(size=45) * 0.2,
    }
    chumpy, Ch = _stand_in_class("chumpy.ch", "Ch")
    sparse, Csc = _stand_in_class("scipy.sparse._csc", "csc_matrix")
    fakes = _fake_modules(chumpy, sparse)
    replaced = {name: sys.modules[name] for name in fakes if name in sys.modules}
    sys.modules.update(fakes)
    try:
        content = {"bs_style": "lbs", "bs_type": "lrotmin"}
        for key, value in arrays.items():
            if key in ("shapedirs", "v_template", "posedirs", "weights"):
                ch = Ch()
                ch.x = value  # chumpy keeps its value in state['x']
                content[key] = ch
            elif key == "J_regressor":
                csc = Csc()
                nz_rows, nz_cols = np.nonzero(value.T)  # column-major walk: for each column, its rows
                csc.__dict__.update(_shape=value.shape, format="csc", data=value.T[nz_rows, nz_cols],
                                    indices=nz_cols, indptr=np.searchsorted(nz_rows, np.arange(V + 1)))
                content[key] = csc
            else:
                content[key] = value
        with open(path, "wb") as f:
            pickle.dump(content, f, protocol=2)
    finally:
        for name in fakes:
            del sys.modules[name]
        sys.modules.update(replaced)
    return arrays


def reference_model(arrays) -> HandModel:
    return HandModel(name="ref", side="right", v_template=arrays["v_template"], faces=arrays["f"].astype(np.int32),
                     weights=arrays["weights"], joint_regressor=arrays["J_regressor"], shapedirs=arrays["shapedirs"],
                     tip_vertex_ids=np.array([745, 317, 444, 556, 673]),
                     posedirs=arrays["posedirs"].transpose(2, 0, 1))


def test_fake_mano_loads_without_chumpy_and_matches_reference(tmp_path):
    assert "chumpy" not in sys.modules
    arrays = write_fake_mano(tmp_path / "MANO_RIGHT.pkl")
    model = load_hand_model(str(tmp_path / "MANO_RIGHT.pkl"), "right")
    np.testing.assert_allclose(model.joint_regressor, arrays["J_regressor"], atol=1e-7)
    rng = np.random.default_rng(1)
    betas, pose, transl = rng.normal(size=10), rng.normal(size=(16, 3)) * 0.5, rng.normal(size=3) * 0.1
    out = HandLayer(model, torch.float64)(torch.tensor(betas[None]), torch.tensor(pose[None]), torch.tensor(transl[None]))
    ref_verts, ref_joints = numpy_lbs(reference_model(arrays), betas, pose, transl)
    np.testing.assert_allclose(out.vertices[0].numpy(), ref_verts, atol=1e-6)
    np.testing.assert_allclose(out.joints[0].numpy(), ref_joints, atol=1e-6)
    assert out.vertices.shape == (1, 778, 3)


def test_pca_pose_with_hands_mean(tmp_path):
    arrays = write_fake_mano(tmp_path / "MANO_RIGHT.pkl", seed=2)
    layer = HandLayer(load_hand_model(str(tmp_path), "right"), torch.float64)
    coeffs, orient = np.random.default_rng(3).normal(size=(1, 12)), np.array([[0.1, 0.2, -0.3]])
    pose = layer.pose_from_pca(torch.tensor(orient), torch.tensor(coeffs)).numpy()[0]
    expected = np.concatenate([orient[0], arrays["hands_mean"] + coeffs[0] @ arrays["hands_components"][:12]])
    np.testing.assert_allclose(pose.ravel(), expected, atol=1e-6)


def test_left_from_folder_and_mirroring(tmp_path):
    write_fake_mano(tmp_path / "MANO_RIGHT.pkl", seed=4)
    write_fake_mano(tmp_path / "MANO_LEFT.pkl", seed=5)
    left = load_hand_model(str(tmp_path), "left")
    assert left.side == "left"
    arrays_left = write_fake_mano(tmp_path / "other.pkl", seed=5)
    np.testing.assert_allclose(left.v_template, arrays_left["v_template"], atol=1e-7)  # its own file, not mirrored
    mirrored = load_hand_model(str(tmp_path / "MANO_RIGHT.pkl"), "left")
    right = load_hand_model(str(tmp_path / "MANO_RIGHT.pkl"), "right")
    np.testing.assert_allclose(mirrored.v_template[:, 0], -right.v_template[:, 0])


def test_missing_and_malformed_files_name_the_file(tmp_path):
    with pytest.raises(HandModelError, match="MANO_RIGHT.pkl.*not found"):
        load_hand_model(str(tmp_path / "MANO_RIGHT.pkl"))
    bad = tmp_path / "broken.pkl"
    bad.write_bytes(b"\x80\x02not a pickle at all")
    with pytest.raises(HandModelError, match="broken.pkl: not a readable MANO pickle"):
        load_hand_model(str(bad))
    incomplete = tmp_path / "incomplete.pkl"
    with open(incomplete, "wb") as f:
        pickle.dump({"v_template": np.zeros((V, 3))}, f, protocol=2)
    with pytest.raises(HandModelError, match="incomplete.pkl: missing MANO key"):
        load_hand_model(str(incomplete))
