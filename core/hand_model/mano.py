"""Load MANO (MANO_RIGHT.pkl / MANO_LEFT.pkl) without chumpy or scipy.

MANO cannot ship with handcap: users who accepted its licence download the pickles and point
handcap at them (``--hand-model PATH``, a .pkl file or the folder holding both). The pickles
were written by Python 2 and contain chumpy arrays (``chumpy.ch.Ch``) and a scipy sparse
``J_regressor``; chumpy does not import on Python 3.11, so an Unpickler maps those classes to
small stand-ins that keep the arrays from their pickled state.
"""

from __future__ import annotations

import os
import pickle

import numpy as np

from .model import NUM_JOINTS, PARENTS, HandModel, HandModelError

# MANO vertices used as fingertips (thumb, index, middle, ring, pinky), as FreiHAND defines them.
MANO_TIP_VERTEX_IDS = np.array([745, 317, 444, 556, 673])
_REQUIRED = ("v_template", "f", "weights", "J_regressor", "shapedirs", "posedirs", "kintree_table")


class _PickledState:
    """Stand-in for a class we will not import: keeps whatever state it was pickled with."""

    def __init__(self, *args, **kwargs):
        self.state = {}

    def __setstate__(self, state):
        self.state = state if isinstance(state, dict) else {"_state": state}


class _ChumpyArray(_PickledState):
    """chumpy.Ch: its value is the array ``state['x']``."""

    def to_numpy(self) -> np.ndarray:
        return np.asarray(self.state["x"])


class _SparseMatrix(_PickledState):
    """scipy.sparse csc/csr matrix: rebuilt dense from data, indices, indptr and shape."""

    def to_numpy(self) -> np.ndarray:
        s = self.state
        shape = tuple(s.get("_shape", s.get("shape")))
        fmt = s.get("format", "csc")
        data, indices, indptr = np.asarray(s["data"]), np.asarray(s["indices"]), np.asarray(s["indptr"])
        dense = np.zeros(shape, dtype=np.float64)
        major = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
        if fmt == "csc":
            dense[indices, major] = data
        else:
            dense[major, indices] = data
        return dense


class _ManoUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module.startswith("chumpy"):
            return _ChumpyArray
        if module.startswith("scipy.sparse"):
            return _SparseMatrix
        return super().find_class(module, name)


def _array(value) -> np.ndarray:
    return value.to_numpy() if hasattr(value, "to_numpy") else np.asarray(value)


def read_mano_pickle(path: str) -> dict:
    """The pickle's contents as plain numpy arrays; HandModelError names the file and the problem."""
    if not os.path.isfile(path):
        raise HandModelError(f"{path}: MANO file not found (download MANO_RIGHT.pkl/MANO_LEFT.pkl from mano.is.tue.mpg.de)")
    try:
        with open(path, "rb") as f:
            raw = _ManoUnpickler(f, encoding="latin1").load()
    except Exception as e:  # a truncated or foreign file can fail in many ways inside pickle
        raise HandModelError(f"{path}: not a readable MANO pickle ({type(e).__name__}: {e})") from None
    if not isinstance(raw, dict):
        raise HandModelError(f"{path}: expected a dict of MANO arrays, found {type(raw).__name__}")
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise HandModelError(f"{path}: missing MANO key(s) {', '.join(missing)}")
    try:
        return {k: _array(v) for k, v in raw.items() if not isinstance(v, str)}
    except (KeyError, ValueError, IndexError) as e:
        raise HandModelError(f"{path}: malformed MANO array ({e})") from None


def _mano_file(path: str, side: str) -> str:
    if os.path.isdir(path):
        return os.path.join(path, f"MANO_{side.upper()}.pkl")
    return path


def load_mano(path: str, side: str = "right") -> HandModel:
    """MANO as a HandModel. ``path``: a MANO_*.pkl or the folder holding MANO_RIGHT.pkl/MANO_LEFT.pkl.

    With a folder, the requested side's own pickle is used; a single file of the other side is
    mirrored. Pose correctives, PCA pose components and ``hands_mean`` come along.
    """
    file = _mano_file(path, side)
    data = read_mano_pickle(file)
    kintree = data["kintree_table"]
    if kintree.shape != (2, NUM_JOINTS) or not np.array_equal(kintree[0, 1:], PARENTS[1:]):
        raise HandModelError(f"{file}: kinematic tree is not MANO's 16-joint hand")
    posedirs = data["posedirs"]                                   # (V, 3, 135)
    V = data["v_template"].shape[0]
    if posedirs.shape != (V, 3, (NUM_JOINTS - 1) * 9):
        raise HandModelError(f"{file}: 'posedirs' has shape {posedirs.shape}, expected ({V}, 3, 135)")
    components = data.get("hands_components")
    model = HandModel(
        name="mano",
        side=_side_of(file, side),
        v_template=data["v_template"].astype(np.float32),
        faces=data["f"].astype(np.int32),
        weights=data["weights"].astype(np.float32),
        joint_regressor=data["J_regressor"].astype(np.float32),
        shapedirs=data["shapedirs"].astype(np.float32),
        posedirs=np.ascontiguousarray(posedirs.transpose(2, 0, 1)).astype(np.float32),
        tip_vertex_ids=MANO_TIP_VERTEX_IDS.copy(),
        pose_mean=None if components is None else data["hands_mean"].reshape(15, 3).astype(np.float32),
        pose_components=None if components is None else components.astype(np.float32),
    )
    model.validate(file)
    return model if model.side == side else model.mirrored()


def _side_of(file: str, requested: str) -> str:
    base = os.path.basename(file).upper()
    if "LEFT" in base:
        return "left"
    if "RIGHT" in base:
        return "right"
    return requested
