"""Rotation conversions in torch: axis-angle, rotation matrices and the 6D representation.

All functions work on any leading batch shape ``(...)``, on CPU and CUDA, in float32 and
float64, and are differentiable everywhere (including at the zero rotation).
The 6D representation (Zhou et al., CVPR 2019) is the first two columns of the matrix,
stored as ``(..., 6) = [R[:, 0], R[:, 1]]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_SMALL_ANGLE_SQ = 1e-8  # below this squared angle (rad^2) use Taylor series


def skew(v: torch.Tensor) -> torch.Tensor:
    """(..., 3) vectors -> (..., 3, 3) cross-product matrices, skew(a) @ b = a x b."""
    x, y, z = v.unbind(-1)
    zero = torch.zeros_like(x)
    return torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(v.shape[:-1] + (3, 3))


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula: (..., 3) axis * angle in radians -> (..., 3, 3) rotation matrices."""
    theta_sq = (axis_angle * axis_angle).sum(-1, keepdim=True).unsqueeze(-1)  # (..., 1, 1)
    small = theta_sq < _SMALL_ANGLE_SQ
    safe_sq = torch.where(small, torch.ones_like(theta_sq), theta_sq)
    theta = torch.sqrt(safe_sq)
    a = torch.where(small, 1.0 - theta_sq / 6.0, torch.sin(theta) / theta)            # sin(t)/t
    b = torch.where(small, 0.5 - theta_sq / 24.0, (1.0 - torch.cos(theta)) / safe_sq)  # (1-cos t)/t^2
    k = skew(axis_angle)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return eye + a * k + b * (k @ k)


def matrix_to_quaternion(matrix: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation matrices -> (..., 4) unit quaternions (w, x, y, z), w >= 0.

    Picks, per matrix, the best-conditioned of the four standard formulas.
    """
    m = matrix
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    # 4*q_i^2 for each component, from the trace and diagonal
    q_abs_sq = torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22,
                            1 - m00 + m11 - m22, 1 - m00 - m11 + m22], dim=-1)
    q_abs = torch.sqrt(torch.clamp(q_abs_sq, min=1e-12))
    # four candidate quaternions (each row scaled by 4*q_k)
    candidates = torch.stack([
        torch.stack([q_abs_sq[..., 0], m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1),
        torch.stack([m[..., 2, 1] - m[..., 1, 2], q_abs_sq[..., 1], m[..., 1, 0] + m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0]], -1),
        torch.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] + m[..., 0, 1], q_abs_sq[..., 2], m[..., 2, 1] + m[..., 1, 2]], -1),
        torch.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 2, 0] + m[..., 0, 2], m[..., 2, 1] + m[..., 1, 2], q_abs_sq[..., 3]], -1),
    ], dim=-2) / (2.0 * q_abs[..., None])
    best = q_abs.argmax(dim=-1)
    quat = torch.gather(candidates, -2, best[..., None, None].expand(best.shape + (1, 4))).squeeze(-2)
    quat = F.normalize(quat, dim=-1)
    return torch.where(quat[..., :1] < 0, -quat, quat)


def quaternion_to_axis_angle(quat: torch.Tensor) -> torch.Tensor:
    """(..., 4) quaternions (w, x, y, z) -> (..., 3) axis-angle with angle in [0, pi]."""
    quat = torch.where(quat[..., :1] < 0, -quat, quat)
    xyz = quat[..., 1:]
    sin_half = xyz.norm(dim=-1, keepdim=True)
    angle = 2.0 * torch.atan2(sin_half, quat[..., :1])
    small = sin_half < 1e-6
    # angle / sin(angle/2), with its Taylor series near zero: 2 + angle^2 / 12
    scale = torch.where(small, 2.0 + angle * angle / 12.0, angle / torch.where(small, torch.ones_like(sin_half), sin_half))
    return xyz * scale


def matrix_to_axis_angle(matrix: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation matrices -> (..., 3) axis-angle, angle in [0, pi]."""
    return quaternion_to_axis_angle(matrix_to_quaternion(matrix))


def rot6d_to_matrix(rot6d: torch.Tensor) -> torch.Tensor:
    """(..., 6) 6D rotations -> (..., 3, 3) by Gram-Schmidt; the inputs need not be orthonormal."""
    a1, a2 = rot6d[..., :3], rot6d[..., 3:]
    b1 = F.normalize(a1, dim=-1)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def matrix_to_rot6d(matrix: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation matrices -> (..., 6): the first two columns."""
    return torch.cat([matrix[..., :, 0], matrix[..., :, 1]], dim=-1)


def to_matrix(pose: torch.Tensor, pose_format: str) -> torch.Tensor:
    """Pose in 'axis_angle' (..., 3), 'matrix' (..., 3, 3) or 'rot6d' (..., 6) -> (..., 3, 3)."""
    if pose_format == "axis_angle":
        return axis_angle_to_matrix(pose)
    if pose_format == "matrix":
        return pose
    if pose_format == "rot6d":
        return rot6d_to_matrix(pose)
    raise ValueError(f"unknown pose_format {pose_format!r}: use 'axis_angle', 'matrix' or 'rot6d'")


def mirror_axis_angle(axis_angle: torch.Tensor) -> torch.Tensor:
    """Right-hand pose <-> left-hand pose under the x -> -x mirror: (x, y, z) -> (x, -y, -z)."""
    sign = axis_angle.new_tensor([1.0, -1.0, -1.0])
    return axis_angle * sign
