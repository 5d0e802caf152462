import numpy as np
import pytest
import torch

from core.hand_model.rotations import (axis_angle_to_matrix, matrix_to_axis_angle, matrix_to_rot6d,
                                       rot6d_to_matrix)

from .reference_lbs import rodrigues


def random_axis_angle(n, max_angle=np.pi - 1e-3, seed=0):
    rng = np.random.default_rng(seed)
    axis = rng.normal(size=(n, 3))
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    return axis * rng.uniform(0, max_angle, size=(n, 1))


def test_axis_angle_to_matrix_matches_opencv():
    aa = random_axis_angle(200)
    aa[:3] = [[0, 0, 0], [1e-7, 0, 0], [0, 0, 1e-5]]
    ours = axis_angle_to_matrix(torch.tensor(aa)).numpy()
    ref = np.stack([rodrigues(a) for a in aa])
    np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_matrix_to_axis_angle_inverts_opencv_rotations():
    aa = random_axis_angle(200)
    R = torch.tensor(np.stack([rodrigues(a) for a in aa]))
    np.testing.assert_allclose(matrix_to_axis_angle(R).numpy(), aa, atol=1e-7)


@pytest.mark.parametrize("angle", [0.0, 1e-6, np.pi - 1e-4])
def test_axis_angle_round_trip_at_edges(angle):
    aa = torch.tensor([[0.3, -0.5, 0.81]], dtype=torch.float64)
    aa = aa / aa.norm() * angle
    back = matrix_to_axis_angle(axis_angle_to_matrix(aa))
    np.testing.assert_allclose(back.numpy(), aa.numpy(), atol=1e-6)


def test_rot6d_round_trip_and_orthonormal():
    R = axis_angle_to_matrix(torch.tensor(random_axis_angle(50)))
    np.testing.assert_allclose(rot6d_to_matrix(matrix_to_rot6d(R)).numpy(), R.numpy(), atol=1e-12)
    noisy = rot6d_to_matrix(torch.randn(50, 6, dtype=torch.float64))
    eye = torch.eye(3, dtype=torch.float64).expand(50, 3, 3)
    np.testing.assert_allclose((noisy.transpose(1, 2) @ noisy).numpy(), eye.numpy(), atol=1e-12)
    np.testing.assert_allclose(torch.linalg.det(noisy).numpy(), 1.0, atol=1e-12)


def test_gradient_is_finite_at_zero_rotation():
    aa = torch.zeros(4, 3, dtype=torch.float64, requires_grad=True)
    axis_angle_to_matrix(aa).sum().backward()
    assert torch.isfinite(aa.grad).all()
    # d R / d aa at zero is the skew generator: sum of R entries has gradient 0 by antisymmetry
    np.testing.assert_allclose(aa.grad.numpy(), 0.0, atol=1e-12)
