"""core.hand_model.inverse_kinematics: a pose from 21 keypoints, checked by posing the layer with it."""

from __future__ import annotations

import math

import torch

from core.hand_model import HandLayer, PosePrior
from core.hand_model.inverse_kinematics import kabsch, pose_from_keypoints, swing


def test_swing_turns_a_onto_b_by_the_smallest_angle():
    a = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    b = torch.tensor([[0.0, 2.0, 0.0], [0.0, 0.0, 3.0]], dtype=torch.float64)
    rotation = swing(a, b)
    assert torch.allclose(rotation[0] @ a[0], torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64), atol=1e-12)
    angle = torch.arccos(((torch.diagonal(rotation[0]).sum() - 1) / 2).clamp(-1, 1))
    assert math.isclose(angle.item(), math.pi / 2, abs_tol=1e-9)           # a quarter turn, nothing more
    assert torch.allclose(rotation[1], torch.eye(3, dtype=torch.float64))  # parallel: no rotation


def test_kabsch_recovers_a_rotation_without_reflection():
    torch.manual_seed(0)
    points = torch.randn(1, 6, 3, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))
    q = q * torch.sign(torch.linalg.det(q))                                # a proper rotation
    moved = points @ q.T + torch.tensor([0.3, -0.1, 2.0], dtype=torch.float64)
    assert torch.allclose(kabsch(points, moved)[0], q, atol=1e-10)


def test_pose_from_keypoints_reproduces_posed_hands(open_right):
    """Keypoints of random natural poses and shapes (moved and scaled): the pose found poses the
    layer onto the same root-relative keypoints (bone directions fix every joint, the palm fixes
    the global turn)."""
    layer = HandLayer(open_right, torch.float64)
    torch.manual_seed(1)
    pose = PosePrior(open_right).sample(32).double()
    betas = torch.randn(32, 10, dtype=torch.float64)
    keypoints = layer(betas, pose, keypoints_only=True).keypoints
    rest = layer(betas, keypoints_only=True).keypoints
    found = pose_from_keypoints(rest, 1.7 * keypoints + torch.tensor([0.1, 0.2, 0.5], dtype=torch.float64))
    again = layer(betas, found, keypoints_only=True).keypoints
    error = ((again - again[:, :1]) - (keypoints - keypoints[:, :1])).norm(dim=-1)
    assert error.max().item() < 1e-9
