"""Turn hand-layer poses into capture-file tracks (the engine's side of the capture contract).

The file format itself lives in ``blender_addon.capture_format`` (numpy only), because the
Blender add-on must read it without torch or core; this module fills it from the torch layer.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from blender_addon.capture_format import Capture, CaptureViews, HandTrack, load_capture, save_capture  # noqa: F401 (re-export)

from .hand_model import HandLayer
from .hand_model.landmark_points import LandmarkPoints


def project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(..., 3) camera-space metres (OpenCV axes) -> (..., 2) pixels through intrinsics K (3, 3)."""
    uvw = points @ K.T
    return uvw[..., :2] / uvw[..., 2:3]


@torch.no_grad()
def track_from_layer(layer: HandLayer, betas: np.ndarray, pose: np.ndarray, transl: np.ndarray,
                     K: np.ndarray, frame_index: Optional[np.ndarray] = None,
                     confidence: Optional[np.ndarray] = None, valid: Optional[np.ndarray] = None) -> HandTrack:
    """A HandTrack for one subject posed over N frames.

    betas (S,) one shape for the track; pose (N, 16, 3) axis-angle radians; transl (N, 3) metres,
    camera space; K (3, 3) pixels. The rig (rest mesh, joints, weights) is taken from the layer's model;
    the 21 keypoints are its landmark points (where a photo's hand landmarks are defined,
    core.hand_model.landmark_points), not the rig's joint centres.
    """
    pose = np.asarray(pose, np.float32)
    n = pose.shape[0]
    dtype = layer.v_template.dtype
    device = layer.v_template.device
    betas_t = torch.as_tensor(np.asarray(betas, np.float32), dtype=dtype, device=device).expand(n, -1)
    out = layer(betas_t, torch.as_tensor(pose, dtype=dtype, device=device),
                torch.as_tensor(np.asarray(transl, np.float32), dtype=dtype, device=device))
    model = layer.model
    keypoints_3d = LandmarkPoints(layer.side).to(device, dtype)(out).float().cpu().numpy()
    return HandTrack(
        side=model.side,
        betas=np.asarray(betas, np.float32),
        rest_vertices=out.rest_vertices[0].float().cpu().numpy(),
        faces=model.faces,
        face_uvs=model.face_uvs,
        skin_weights=model.weights,
        rest_joints=out.rest_joints[0].float().cpu().numpy(),
        parents=model.parents,
        joint_names=np.array(model.joint_names),
        pose_correctives=model.posedirs,
        frame_index=np.arange(n, dtype=np.int32) if frame_index is None else np.asarray(frame_index, np.int32),
        pose=pose,
        transl=np.asarray(transl, np.float32),
        joints_3d=keypoints_3d,
        keypoints_2d=project(keypoints_3d, np.asarray(K, np.float32)).astype(np.float32),
        confidence=np.ones(n, np.float32) if confidence is None else np.asarray(confidence, np.float32),
        valid=np.ones(n, bool) if valid is None else np.asarray(valid, bool),
    )


def default_intrinsics(width: int, height: int, fov_deg: float = 50.0) -> np.ndarray:
    """(3, 3) pinhole K for an image whose larger side spans ``fov_deg`` (a documented default)."""
    focal = 0.5 * max(width, height) / np.tan(np.deg2rad(fov_deg) / 2)
    return np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]], np.float32)
