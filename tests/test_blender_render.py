"""A render through the capture camera lands on the capture's 2D keypoints.

Renders the built hand with Cycles on the CPU through the camera the add-on made, composites
it over the (synthetic) source photo, and checks that the projected joints fall on the hand.
``HANDCAP_WRITE_DOCS=1`` also writes the full-size picture to docs/blender_render.png.
"""

from __future__ import annotations

import os

import numpy as np

from tests.test_blender_support import REPO, bpy_or_skip, model_capture, reset_scene, save, write_png

bpy = bpy_or_skip()

from blender_addon import import_capture  # noqa: E402
from training.blender_views_figure import light_scene as figure_lights  # noqa: E402

DOCS_PICTURE = os.path.join(REPO, "docs", "blender_render.png")
BONES = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10), (10, 11),
         (11, 12), (0, 13), (13, 14), (14, 15), (15, 16), (0, 17), (17, 18), (18, 19), (19, 20)]


def light_scene(scene) -> None:
    """The figure script's lights (training/blender_views_figure.py): a dim world and a key light."""
    figure_lights(bpy, scene)


def render(path: str, scale: int, samples: int) -> np.ndarray:
    """Render the scene camera to ``path``; returns the RGBA image (H, W, 4) in [0, 1]."""
    import cv2
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_denoising = samples >= 32      # docs picture only (OpenImageDenoise, CPU)
    scene.render.film_transparent = True
    scene.render.resolution_percentage = scale
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"
    scene.render.filepath = path
    bpy.ops.render.render(write_still=True)
    bgra = cv2.imread(path, cv2.IMREAD_UNCHANGED).astype(np.float32) / 255.0
    return bgra


def composite(rgba: np.ndarray, background_path: str, keypoints: np.ndarray, scale: float) -> np.ndarray:
    """Render over the source photo, with the capture's 2D keypoints drawn on top (BGR uint8)."""
    import cv2
    h, w = rgba.shape[:2]
    bg = cv2.resize(cv2.imread(background_path), (w, h)).astype(np.float32) / 255.0
    alpha = rgba[..., 3:4]
    out = (rgba[..., :3] * alpha + bg * (1 - alpha)) * 255
    out = out.astype(np.uint8)
    pts = (keypoints * scale + (scale - 1) / 2).round().astype(int)
    for a, b in BONES:
        cv2.line(out, tuple(pts[a]), tuple(pts[b]), (60, 200, 60), max(1, int(2 * scale)), cv2.LINE_AA)
    for p in pts:
        cv2.circle(out, tuple(p), max(2, int(4 * scale)), (30, 30, 220), -1, cv2.LINE_AA)
    return out


def test_render_through_capture_camera_lands_on_keypoints(tmp_path):
    import cv2
    write_docs = os.environ.get("HANDCAP_WRITE_DOCS") == "1"
    background = write_png(tmp_path / "backdrop.png")
    capture, _ = model_capture(("right",), 1, seed=5, source_path=background, fingers_up=True,
                                distance=0.3)
    reset_scene()
    result = import_capture.import_files([save(capture, tmp_path / "backdrop.npz")], bpy.context)[0]
    scene = bpy.context.scene
    assert scene.camera == result.camera
    light_scene(scene)
    scale = 1.0 if write_docs else 0.5
    rgba = render(str(tmp_path / "render.png"), int(scale * 100), 32 if write_docs else 4)
    track = capture.tracks[0]
    kp = track.keypoints_2d[0]
    # pixel centres: full-size pixel u maps to (u + 0.5) * scale - 0.5 at this scale
    pix = ((kp + 0.5) * scale - 0.5).round().astype(int)
    mask = (rgba[..., 3] > 0.5).astype(np.uint8)
    assert mask.sum() > 500
    near = cv2.dilate(mask, np.ones((5, 5), np.uint8))            # 2 px at this scale
    on_hand = near[pix[:, 1], pix[:, 0]].astype(bool)
    assert on_hand.all(), np.flatnonzero(~on_hand)
    ys, xs = np.nonzero(mask)                                     # the hand fills the keypoints' box
    box_kp = np.array([pix[:, 0].min(), pix[:, 1].min(), pix[:, 0].max(), pix[:, 1].max()])
    box_mask = np.array([xs.min(), ys.min(), xs.max(), ys.max()])
    # the fingers point up: the mesh ends at the forearm cut, about 1.6 cm below the wrist keypoint (a
    # landmark point, 4 mm distal of the wrist joint), so that (bottom) edge lies further out; the
    # fingertip keypoints sit up to 1.4 cm inside the finger pads, so the other edges may lie out too
    assert np.abs(box_mask - box_kp)[:3].max() < 35 * scale and 0 <= box_mask[3] - box_kp[3] < 55 * scale
    picture = composite(rgba, background, kp, scale)
    cv2.imwrite(str(tmp_path / "composite.png"), picture)
    if write_docs:
        os.makedirs(os.path.dirname(DOCS_PICTURE), exist_ok=True)
        tmp = DOCS_PICTURE + ".tmp.png"
        cv2.imwrite(tmp, picture)
        os.replace(tmp, DOCS_PICTURE)
