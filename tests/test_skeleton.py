"""The open hand's skeleton: joint centres where a hand's joints are, weights that bend there,
and the fit-to-ground-truth floor script."""

import numpy as np
import torch

from core.hand_model import HandLayer, PosePrior
from core.hand_model import anatomy
from core.hand_model.joint_centres import winding_numbers
from core.hand_model.model import KEYPOINT_NAMES
from training.skeleton_floor import bone_lengths_mm, fit_floor
from training.metrics import pa_errors_mm



def rest_keypoints(model, betas=None):
    return HandLayer(model, torch.float64)(None if betas is None else torch.as_tensor(betas)[None]).keypoints[0].numpy()


def test_proportions_follow_published_bone_lengths(open_right):
    """Zero shape: palm over proximal phalanx in the 1.5-1.9 band real hands show, and every
    finger's proximal phalanx and the thumb's metacarpal within 12 % of Buryanov & Kotiuk's
    lengths after one common scale (the mean ratio model / published over these bones)."""
    bones = bone_lengths_mm(rest_keypoints(open_right))
    ratio = bones["wrist -> middle MCP"] / bones["middle MCP -> PIP"]
    assert 1.5 <= ratio <= 1.9, ratio
    published = {"index MCP -> PIP": anatomy.PROXIMAL["index"], "middle MCP -> PIP": anatomy.PROXIMAL["middle"],
                 "ring MCP -> PIP": anatomy.PROXIMAL["ring"], "pinky MCP -> PIP": anatomy.PROXIMAL["pinky"],
                 "thumb CMC -> MCP": anatomy.METACARPAL["thumb"], "thumb MCP -> IP": anatomy.PROXIMAL["thumb"]}
    scale = np.mean([bones[k] / v for k, v in published.items()])
    for name, length in published.items():
        assert abs(bones[name] / (scale * length) - 1) < 0.12, (name, bones[name], scale * length)


def cut_loop(faces: np.ndarray) -> list:
    """The mesh's one boundary loop (the wrist cut), as ordered vertex ids."""
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    undirected, counts = np.unique(np.sort(directed, 1), axis=0, return_counts=True)
    border = {tuple(e) for e in undirected[counts == 1]}
    nxt = {int(a): int(b) for a, b in directed if (min(a, b), max(a, b)) in border}
    cut, v = [], next(iter(nxt))
    while v not in cut:
        cut.append(v)
        v = nxt[v]
    return cut


def test_joint_centres_lie_inside_the_hand_for_every_shape(open_right):
    """Generalised winding number (an independent inside test) of each rest joint, for the mean
    hand and for +-2 sigma along each of the first three shape directions: all inside, and the
    wrist at least 5 mm distal of the centre of the mesh's (tilted) cut: the cut is in the forearm."""
    faces = open_right.faces
    cut = cut_loop(faces)
    for k in (None, 0, 1, 2):
        for sign in ((0.0,) if k is None else (-2.0, 2.0)):
            betas = np.zeros(open_right.num_betas)
            if k is not None:
                betas[k] = sign
            verts = open_right.v_template + open_right.shapedirs @ betas
            joints = open_right.joint_regressor @ verts
            inside = winding_numbers(joints.astype(np.float64), verts.astype(np.float64), faces, cut)
            assert (inside > 0.9).all(), (k, sign, inside.round(2))
            assert joints[0, 1] - verts[cut, 1].mean() > 0.005


def test_weights_hand_each_finger_over_at_its_knuckle(open_right):
    """Along the middle finger's ray, vertices near the MCP centre are shared between the palm and
    the proximal phalanx; those 2-3 cm beyond move with the fingers (the middle one's, or at the
    webs a neighbour's), not with the palm; those 2-3 cm before move with the palm alone."""
    joints = open_right.joint_regressor @ open_right.v_template
    mcp, pip = joints[4], joints[5]
    axis = (pip - mcp) / np.linalg.norm(pip - mcp)
    offset = open_right.v_template - mcp
    along = offset @ axis
    across = np.linalg.norm(offset - along[:, None] * axis, axis=1)
    near_ray = across < 0.012
    finger_share = open_right.weights[:, 4:7].sum(1)
    assert finger_share[near_ray & (np.abs(along) < 0.003)].mean() > 0.2
    assert finger_share[near_ray & (np.abs(along) < 0.003)].mean() < 0.8
    assert open_right.weights[near_ray & (along > 0.02) & (along < 0.03), 0].max() < 0.02
    assert open_right.weights[near_ray & (along < -0.02) & (along > -0.03), 0].min() > 0.95


def test_floor_fit_recovers_the_models_own_hands(open_right):
    """Targets made by the layer itself (natural poses, |beta| < 0.8, random place): the floor's fit
    converges onto them (sub-millimetre), so a floor measured on real hands is the skeleton's."""
    layer = HandLayer(open_right, torch.float64)
    g = torch.Generator().manual_seed(0)
    pose = PosePrior(open_right).sample(4, g, global_orient=True).double()
    betas = (torch.rand(4, 10, generator=g, dtype=torch.float64) - 0.5) * 1.6
    transl = torch.randn(4, 3, generator=g, dtype=torch.float64) * 0.1
    targets = layer(betas, pose, transl, keypoints_only=True).keypoints.numpy()
    fitted, fitted_betas = fit_floor(layer, targets, shape_limit=1.0, max_rounds=6)
    assert pa_errors_mm(fitted, targets).mean() < 0.5
    assert np.abs(fitted_betas).max() < 1.05
    assert fitted.shape == (4, len(KEYPOINT_NAMES), 3)
