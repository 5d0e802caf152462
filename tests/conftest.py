"""Shared fixtures: the shipped open hand, a small random hand model with pose correctives,
and the reference LBS applied to a hand model."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from core.hand_model.model import PARENTS, HandModel, load_hand_model

from .reference_lbs import skin

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL_IMAGES = os.path.join(os.path.dirname(REPO), "shared", "real_images")
_EXIT_STATUS = pytest.StashKey[int]()


def pytest_sessionfinish(session, exitstatus):
    session.config.stash[_EXIT_STATUS] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """With bpy 4.x (the LTS runs, .ci/blender_versions.sh) leave at once with pytest's status.

    bpy 4.x shuts Blender down only when its module object is freed, and what the add-on's tests
    register keeps it alive, even once unregistered (on 4.2 a PropertyGroup with a method is
    enough): its C++ destructors then run against a finished Python and the process crashes
    (4.2, status 139) or hangs (4.5, tests/test_blender_retarget.py) after every result is in.
    bpy 5.0 exits normally. Skipping the interpreter's shutdown loses nothing: every result and
    report is written by now.
    """
    bpy = sys.modules.get("bpy")
    version = getattr(getattr(bpy, "app", None), "version", None)
    if version is None or tuple(version) >= (5, 0, 0) or _EXIT_STATUS not in config.stash:
        return
    writer = config.get_terminal_writer()
    writer.flush()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    os._exit(config.stash[_EXIT_STATUS])


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


def numpy_lbs(model: HandModel, betas: np.ndarray, pose: np.ndarray, transl: np.ndarray):
    """Reference LBS for one hand of ``model`` (shape blend shapes, then tests/reference_lbs.py).

    Returns (vertices (V,3), joints (16,3)).
    """
    v = model.v_template.astype(np.float64) + model.shapedirs.astype(np.float64) @ betas
    J = model.joint_regressor.astype(np.float64) @ v
    verts, joints = skin(v, J, PARENTS, model.weights, pose[None], np.asarray(transl)[None], model.posedirs)
    return verts[0], joints[0]
