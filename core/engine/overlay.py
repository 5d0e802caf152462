"""Draw estimated hands on the photo: the shaded mesh (semi-transparent) and the 21 keypoints."""

from __future__ import annotations

import cv2
import numpy as np

from blender_addon.capture_format import HandTrack

from core.capture import project
from core.hand_model.model import KEYPOINT_BONES

FINGER_COLOURS = [(60, 60, 230), (60, 200, 60), (230, 160, 40), (200, 60, 200), (40, 200, 230)]  # BGR, thumb..pinky
MESH_COLOUR = {"right": np.array([255, 200, 120.0]), "left": np.array([120, 200, 255.0])}        # BGR
MESH_ALPHA = 0.6


def draw_mesh(bgr: np.ndarray, vertices: np.ndarray, faces: np.ndarray, K: np.ndarray, colour: np.ndarray) -> None:
    """Paint a camera-space mesh (V, 3) metres into ``bgr`` in place: far-to-near filled triangles,
    Lambert-shaded by their facing, blended with MESH_ALPHA."""
    pixels = project(vertices, K)
    tri = vertices[faces]                                                    # (F, 3, 3)
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
    centres = tri.mean(1)
    facing = -(normals * centres).sum(1) / (np.linalg.norm(centres, axis=1) + 1e-12)   # > 0: towards the camera
    visible = np.nonzero((tri[:, :, 2] > 0.01).all(1))[0]
    layer, mask = bgr.copy(), np.zeros(bgr.shape[:2], np.uint8)
    order = visible[np.argsort(-centres[visible, 2])]
    shade = np.clip(0.35 + 0.65 * np.abs(facing), 0, 1)
    points = np.round(pixels[faces] * 16).astype(np.int32)                  # 4 bits of sub-pixel precision
    for f in order:
        cv2.fillConvexPoly(layer, points[f], (colour * shade[f]).tolist(), cv2.LINE_AA, 4)
        cv2.fillConvexPoly(mask, points[f], 255, cv2.LINE_8, 4)
    alpha = (mask.astype(np.float32) / 255.0 * MESH_ALPHA)[..., None]
    bgr[:] = (bgr * (1 - alpha) + layer * alpha).astype(np.uint8)


def draw_keypoints(bgr: np.ndarray, keypoints_2d: np.ndarray) -> None:
    """Draw the 21-keypoint skeleton (pixels) into ``bgr`` in place, one colour per finger."""
    thickness = max(1, round(max(bgr.shape[:2]) / 400))
    points = np.round(keypoints_2d).astype(int)
    for i, (a, b) in enumerate(KEYPOINT_BONES):
        cv2.line(bgr, tuple(points[a]), tuple(points[b]), FINGER_COLOURS[i // 4], thickness, cv2.LINE_AA)
    for p in points:
        cv2.circle(bgr, tuple(p), thickness + 1, (255, 255, 255), -1, cv2.LINE_AA)


def draw_tracks(bgr: np.ndarray, tracks: list[HandTrack], vertices: list[np.ndarray], K: np.ndarray, row: list,
                scale: tuple = (1.0, 1.0)) -> np.ndarray:
    """One frame's overlay: for each track whose row ``row[t]`` (or None) is valid, its mesh
    ``vertices[t][row]`` (camera space) and keypoints. ``scale``: (x, y) pixels of ``bgr`` per
    pixel of the image K and the keypoints belong to (below 1 for an overlay drawn smaller).
    Returns a new image."""
    out = bgr.copy()
    factor = np.array(scale, np.float64)
    K = np.diag([factor[0], factor[1], 1.0]) @ np.asarray(K, np.float64)
    for track, verts, r in zip(tracks, vertices, row):
        if r is None or not track.valid[r]:
            continue
        draw_mesh(out, verts[r], track.faces, K, MESH_COLOUR[track.side])
        draw_keypoints(out, track.keypoints_2d[r] * factor)
    return out
