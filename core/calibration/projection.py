"""Vectorised pinhole projection with OpenCV's distortion (k1, k2, p1, p2, k3) and rotation-vector poses,
for the bundle adjustments of ``extrinsics`` and ``hands`` (numpy; one call for every observation)."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation


def rotate(rvecs: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, 3) rotation vectors applied to (N, 3) points, row by row (Rodrigues' formula)."""
    theta = np.linalg.norm(rvecs, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        axis = np.where(theta > 1e-12, rvecs / theta, 0.0)
    cos, sin = np.cos(theta), np.sin(theta)
    dot = np.sum(axis * points, axis=1, keepdims=True)
    return points * cos + np.cross(axis, points) * sin + axis * dot * (1 - cos)


def project(points: np.ndarray, K: np.ndarray, distortion: np.ndarray) -> np.ndarray:
    """(N, 3) camera-space points, (N, 3, 3) intrinsics, (N, 5) distortion -> (N, 2) pixels."""
    z = points[:, 2]
    z = np.where(np.abs(z) < 1e-9, 1e-9, z)
    x, y = points[:, 0] / z, points[:, 1] / z
    k1, k2, p1, p2, k3 = distortion.T
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return np.stack([K[:, 0, 0] * xd + K[:, 0, 1] * yd + K[:, 0, 2], K[:, 1, 1] * yd + K[:, 1, 2]], 1)


def compose(r_a: np.ndarray, t_a: np.ndarray, r_b: np.ndarray, t_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pose a after pose b (x -> R_a (R_b x + t_b) + t_a), rotation vectors (3,), translations (3,)."""
    Ra = Rotation.from_rotvec(r_a)
    return (Ra * Rotation.from_rotvec(r_b)).as_rotvec(), Ra.apply(t_b) + t_a


def invert(r: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The inverse pose of (rotation vector, translation)."""
    R = Rotation.from_rotvec(r).inv()
    return R.as_rotvec(), -R.apply(t)


def robust_mean_pose(rvecs: np.ndarray, tvecs: np.ndarray, degrees: float = 2.0) -> tuple[np.ndarray, np.ndarray, int]:
    """One pose from many noisy estimates of it ((N, 3) rotation vectors and translations): the medoid rotation
    (least summed angle to the others), the mean of the rotations within ``degrees`` of it, and the median of
    their translations. Returns (rvec, tvec, inliers)."""
    rotations = Rotation.from_rotvec(rvecs)
    angles = np.stack([(rotations.inv() * r).magnitude() for r in rotations])      # (N, N) radians
    medoid = int(np.argmin(np.median(angles, axis=1)))
    inliers = angles[medoid] <= np.radians(degrees)
    mean = rotations[inliers].mean()
    return mean.as_rotvec(), np.median(tvecs[inliers], axis=0), int(inliers.sum())


def jacobian_sparsity(columns: int, blocks: list) -> "scipy.sparse.csr_matrix":
    """The Jacobian's sparsity for ``least_squares`` with residuals (N, 2) (x, y per observation): ``blocks``
    are (first (N,) int column of each observation's parameter block, block width, (N,) bool mask or None)."""
    from scipy.sparse import coo_matrix
    rows, cols = [], []
    for first, width, mask in blocks:
        obs = np.arange(len(first)) if mask is None else np.flatnonzero(mask)
        for k in range(width):
            for xy in (0, 1):
                rows.append(2 * obs + xy)
                cols.append(first[obs] + k)
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    return coo_matrix((np.ones(rows.size, np.uint8), (rows, cols)),
                      shape=(2 * len(blocks[0][0]), columns)).tocsr()
