"""Rotation conversions for retargeting, in numpy (no bpy): matrices, quaternions, Euler angles.

Quaternions are (w, x, y, z) like Blender's. Euler orders are Blender's: ``"XYZ"`` turns about
X first, then Y, then Z (matrix ``Rz @ Ry @ Rx``). Every function takes a batch (..., 3, 3).
"""

from __future__ import annotations

import numpy as np

EULER_ORDERS = ("XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX")


def unit(v: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Vectors (..., D) scaled to unit length (zero vectors stay zero)."""
    v = np.asarray(v, np.float64)
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), eps)


def orthonormal(m: np.ndarray) -> np.ndarray:
    """The rotation nearest to each (..., 3, 3) matrix (drops scale and shear), via SVD."""
    u, _, vt = np.linalg.svd(np.asarray(m, np.float64))
    d = np.sign(np.linalg.det(u @ vt))
    u[..., :, 2] *= d[..., None]
    return u @ vt


def matrix_to_quaternion(R: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) -> unit quaternions (..., 4), w >= 0 (Shepperd's method)."""
    R = np.asarray(R, np.float64)
    m00, m11, m22 = R[..., 0, 0], R[..., 1, 1], R[..., 2, 2]
    trace = m00 + m11 + m22
    candidates = np.stack([  # 4q_i^2 for w, x, y, z: use the largest for stability
        1 + trace, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    pick = np.argmax(candidates, -1)
    s = np.sqrt(np.maximum(np.take_along_axis(candidates, pick[..., None], -1)[..., 0], 1e-300))
    q = np.empty(R.shape[:-2] + (4,))
    w = (R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1])
    rows = {
        0: (s * s, *w),
        1: (w[0], s * s, R[..., 0, 1] + R[..., 1, 0], R[..., 0, 2] + R[..., 2, 0]),
        2: (w[1], R[..., 0, 1] + R[..., 1, 0], s * s, R[..., 1, 2] + R[..., 2, 1]),
        3: (w[2], R[..., 0, 2] + R[..., 2, 0], R[..., 1, 2] + R[..., 2, 1], s * s),
    }
    for k, row in rows.items():
        sel = pick == k
        if np.any(sel):
            q[sel] = np.stack([np.broadcast_to(c, pick.shape)[sel] for c in row], -1) / (2 * s[sel])[..., None]
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return q * np.where(q[..., :1] < 0, -1.0, 1.0)


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """Quaternions (..., 4) (w, x, y, z; normalised here) -> rotation matrices (..., 3, 3)."""
    q = unit(q)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1).reshape(q.shape[:-1] + (3, 3))


def rotation_angle(R: np.ndarray) -> np.ndarray:
    """The angle (...,) in radians of rotation matrices (..., 3, 3), from their quaternion."""
    q = matrix_to_quaternion(R)
    return 2.0 * np.arctan2(np.linalg.norm(q[..., 1:], axis=-1), np.abs(q[..., 0]))


def rotation_power(R: np.ndarray, share: float) -> np.ndarray:
    """``R`` to the power ``share`` (the same axis, ``share`` times the angle), (..., 3, 3)."""
    q = matrix_to_quaternion(R)
    half = np.arctan2(np.linalg.norm(q[..., 1:], axis=-1), q[..., 0])
    axis = unit(q[..., 1:])
    h = half * share
    return quaternion_to_matrix(np.concatenate([np.cos(h)[..., None], axis * np.sin(h)[..., None]], -1))


def align_hemisphere(q: np.ndarray) -> np.ndarray:
    """Quaternions (N, 4) flipped so consecutive ones have a non-negative dot (no long way round)."""
    q = np.array(q, np.float64, copy=True)
    if len(q) < 2:
        return q
    step = np.where(np.sum(q[1:] * q[:-1], -1) < 0, -1.0, 1.0)
    return q * np.concatenate([[1.0], np.cumprod(step)])[:, None]


def quaternion_to_axis_angle_channels(q: np.ndarray) -> np.ndarray:
    """Quaternions (N, 4) -> Blender's rotation_axis_angle channels (N, 4): angle, x, y, z."""
    q = align_hemisphere(q)
    angle = 2.0 * np.arctan2(np.linalg.norm(q[:, 1:], axis=-1), q[:, 0])
    axis = unit(q[:, 1:])
    axis[np.linalg.norm(q[:, 1:], axis=-1) < 1e-12] = (0.0, 1.0, 0.0)     # Blender's default axis
    return np.concatenate([angle[:, None], axis], -1)


def matrix_to_euler(R: np.ndarray, order: str) -> np.ndarray:
    """Rotation matrices (N, 3, 3) -> Euler angles (N, 3) (x, y, z channels) in ``order``,
    each frame the equivalent angles closest to the frame before (no jumps of 2 pi or flips)."""
    if order not in EULER_ORDERS:
        raise ValueError(f"unknown Euler order {order!r} (use one of {', '.join(EULER_ORDERS)})")
    i, j, k = ("XYZ".index(a) for a in order)          # applied first, second, last
    parity = 1.0 if (i, j, k) in ((0, 1, 2), (1, 2, 0), (2, 0, 1)) else -1.0
    R = np.asarray(R, np.float64)
    # R = R_k(c) R_j(b) R_i(a): the i-th angle is a, the j-th b, the k-th c.
    b = np.arcsin(np.clip(-parity * R[:, k, i], -1.0, 1.0))
    a = np.arctan2(parity * R[:, k, j], R[:, k, k])
    c = np.arctan2(parity * R[:, j, i], R[:, i, i])
    gimbal = np.abs(R[:, k, i]) > 1 - 1e-9             # b = +-90 degrees: put all of a+c into a
    if np.any(gimbal):
        c[gimbal] = 0.0
        a[gimbal] = np.arctan2(-parity * R[gimbal, j, k], R[gimbal, j, j])
    first = np.zeros((len(R), 3))
    first[:, i], first[:, j], first[:, k] = a, b, c
    second = np.zeros_like(first)                        # the other solution: (a+pi, pi-b, c+pi)
    second[:, i], second[:, j], second[:, k] = a + np.pi, np.pi - b, c + np.pi
    out = np.empty_like(first)
    previous = None
    for n in range(len(R)):
        options = [first[n], second[n]]
        if previous is not None:
            options = [o + 2 * np.pi * np.round((previous - o) / (2 * np.pi)) for o in options]
            out[n] = min(options, key=lambda o: np.abs(o - previous).sum())
        else:
            out[n] = min(options, key=lambda o: np.abs(np.angle(np.exp(1j * o))).sum())
            out[n] = np.angle(np.exp(1j * out[n]))
        previous = out[n]
    return out


def euler_to_matrix(angles: np.ndarray, order: str) -> np.ndarray:
    """Euler angles (N, 3) (x, y, z channels) in Blender's ``order`` -> matrices (N, 3, 3)."""
    angles = np.asarray(angles, np.float64)
    out = np.broadcast_to(np.eye(3), angles.shape[:-1] + (3, 3)).copy()
    for axis in order:                                   # the first axis is applied first
        a = angles[..., "XYZ".index(axis)]
        c, s = np.cos(a), np.sin(a)
        R = np.broadcast_to(np.eye(3), out.shape).copy()
        i, j = [(1, 2), (2, 0), (0, 1)]["XYZ".index(axis)]
        R[..., i, i], R[..., i, j], R[..., j, i], R[..., j, j] = c, -s, s, c
        out = R @ out
    return out


def axis_angle_to_matrix(channels: np.ndarray) -> np.ndarray:
    """Blender's rotation_axis_angle channels (N, 4): angle, x, y, z -> matrices (N, 3, 3)."""
    channels = np.asarray(channels, np.float64)
    half = 0.5 * channels[..., :1]
    return quaternion_to_matrix(np.concatenate([np.cos(half), unit(channels[..., 1:]) * np.sin(half)], -1))
