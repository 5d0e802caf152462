"""The tests' own NumPy linear blend skinning: the independent reference that the torch layer,
the Blender rig and the exporters are all checked against.

Written from the capture-file docstring (MANO's formulation, 4x4 homogeneous transforms,
float64, OpenCV's Rodrigues), sharing no code with core or the add-on.
"""

from __future__ import annotations

import cv2
import numpy as np


def rodrigues(axis_angle: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle -> (..., 3, 3) rotation matrices, via OpenCV, float64."""
    aa = np.asarray(axis_angle, np.float64)
    flat = aa.reshape(-1, 3)
    mats = np.stack([cv2.Rodrigues(v.reshape(3, 1))[0] for v in flat]) if len(flat) else np.zeros((0, 3, 3))
    return mats.reshape(aa.shape[:-1] + (3, 3))


def skin(rest_vertices, rest_joints, parents, weights, pose, transl, correctives=None):
    """Pose M frames. rest_vertices (V,3), rest_joints (J,3), parents (J,), weights (V,J),
    pose (M,J,3) axis-angle, transl (M,3), correctives ((J-1)*9,V,3) or None.

    Returns (vertices (M,V,3), joints (M,J,3)) in metres, transl included.
    """
    pose = np.asarray(pose, np.float64)
    J = np.asarray(rest_joints, np.float64)
    M, num_joints = pose.shape[:2]
    R = rodrigues(pose)                                                       # (M, J, 3, 3)
    G = np.zeros((M, num_joints, 4, 4))
    for j in range(num_joints):
        local = np.zeros((M, 4, 4))
        local[:, :3, :3] = R[:, j]
        local[:, :3, 3] = J[j] - (J[parents[j]] if parents[j] >= 0 else 0)
        local[:, 3, 3] = 1
        G[:, j] = local if parents[j] < 0 else G[:, parents[j]] @ local
    posed_joints = G[:, :, :3, 3].copy()
    G[:, :, :3, 3] -= np.einsum("mjab,jb->mja", G[:, :, :3, :3], J)          # G_j @ [I | -J_j]
    verts = np.repeat(np.asarray(rest_vertices, np.float64)[None], M, axis=0)
    if correctives is not None:
        features = (R[:, 1:] - np.eye(3)).reshape(M, -1)
        verts += np.einsum("mk,kvc->mvc", features, np.asarray(correctives, np.float64))
    T = np.einsum("vj,mjab->mvab", np.asarray(weights, np.float64), G)        # (M, V, 4, 4)
    posed = np.einsum("mvab,mvb->mva", T[..., :3, :3], verts) + T[..., :3, 3]
    transl = np.asarray(transl, np.float64)[:, None, :]
    return posed + transl, posed_joints + transl
