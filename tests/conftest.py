"""Shared fixtures: the shipped open hand, a small random hand model with pose correctives,
and an independent NumPy implementation of linear blend skinning to check the torch layer against."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from core.hand_model.model import PARENTS, HandModel, load_hand_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL_IMAGES = os.path.join(os.path.dirname(REPO), "shared", "real_images")


@pytest.fixture(scope="session")
def open_right() -> HandModel:
    return load_hand_model("open", "right")


@pytest.fixture(scope="session")
def open_left() -> HandModel:
    return load_hand_model("open", "left")


def random_hand_model(seed: int = 0, num_vertices: int = 60, num_betas: int = 10, correctives: bool = True) -> HandModel:
    """A small random hand model with MANO's tree, random skinning and random pose correctives."""
    rng = np.random.default_rng(seed)
    V = num_vertices
    weights = rng.random((V, 16)) ** 4
    weights /= weights.sum(1, keepdims=True)
    regressor = rng.random((16, V)) * (rng.random((16, V)) < 0.2)
    regressor[:, 0] += 1e-3
    regressor /= regressor.sum(1, keepdims=True)
    return HandModel(
        name="toy", side="right",
        v_template=(rng.normal(size=(V, 3)) * 0.05).astype(np.float32),
        faces=rng.integers(0, V, size=(40, 3)).astype(np.int32),
        weights=weights.astype(np.float32),
        joint_regressor=regressor.astype(np.float32),
        shapedirs=(rng.normal(size=(V, 3, num_betas)) * 0.005).astype(np.float32),
        tip_vertex_ids=rng.choice(V, 5, replace=False),
        posedirs=(rng.normal(size=(135, V, 3)) * 0.01).astype(np.float32) if correctives else None,
    )


def rodrigues(aa: np.ndarray) -> np.ndarray:
    """OpenCV's Rodrigues, one vector at a time: an implementation independent of core's."""
    return cv2.Rodrigues(np.asarray(aa, np.float64).reshape(3, 1))[0]


def numpy_lbs(model: HandModel, betas: np.ndarray, pose: np.ndarray, transl: np.ndarray):
    """Reference LBS for one hand, float64, 4x4 homogeneous transforms, MANO's formulation.

    Returns (vertices (V,3), joints (16,3)).
    """
    v = model.v_template.astype(np.float64) + model.shapedirs.astype(np.float64) @ betas
    J = model.joint_regressor.astype(np.float64) @ v
    R = np.stack([rodrigues(p) for p in pose])
    if model.posedirs is not None:
        feat = (R[1:] - np.eye(3)).ravel()
        v = v + np.tensordot(feat, model.posedirs.astype(np.float64), axes=1)
    G = np.zeros((16, 4, 4))
    for j in range(16):
        local = np.eye(4)
        local[:3, :3] = R[j]
        local[:3, 3] = J[j] - (J[PARENTS[j]] if j > 0 else 0)
        G[j] = local if j == 0 else G[PARENTS[j]] @ local
    posed_joints = G[:, :3, 3].copy()
    for j in range(16):  # remove the rest joint: G_j @ [I | -J_j]
        G[j, :3, 3] -= G[j, :3, :3] @ J[j]
    T = np.tensordot(model.weights.astype(np.float64), G, axes=1)  # (V, 4, 4)
    vh = np.concatenate([v, np.ones((len(v), 1))], 1)
    verts = np.einsum("vij,vj->vi", T, vh)[:, :3]
    return verts + transl, posed_joints + transl
