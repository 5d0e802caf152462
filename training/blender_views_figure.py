"""A multi-view capture imported in Blender, rendered through every view's camera over that view's
photo: does the hand mesh sit on the photographed hand in every view? (issue 31; docs/blender_views.png)

    python -m training.blender_views_figure CAPTURE.npz [--out docs/blender_views.png] [--samples 16]
        [--scale 0.6] [--truth SAMPLE_DIR]

CAPTURE is what ``handcap estimate --views ... --cameras ...`` wrote (``views/*`` keys; the photos at
its ``views/source_path``). The add-on imports it into an empty scene (blender_addon.import_capture:
one camera per view, its photo as background), a sun lights it, and Cycles (CPU) renders each
camera with a transparent film at that view's size; each render is laid over its photo at 75 %
opacity (top row); below it, the photo zoomed around the hand with the render's outline in yellow,
so the photographed hand shows where the mesh's edge falls. The views go side by side into one PNG.

With ``--truth`` (a sample of ``python -m training.synth.multiview``: view{c}_mask.png, truth.json)
it prints, per view, how the render meets the truth: the intersection over union of the rendered
hand and the true hand mask (forearm excluded in both), the offset (pixels) from the true mask's
centroid to the render's, and the mean distance (pixels) from the capture's 21 landmarks projected
with K_c (R_c x + t_c) to the true landmarks (truth.json landmarks_2d); the true landmarks are drawn
as green dots on the figure.

Runs in the venv's bpy (``import bpy``), so with the venv's python rather than Blender's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import cv2
import numpy as np

OPACITY = 0.75                  # the photo shows through the hand a little


def light_scene(bpy, scene) -> None:
    """A dim grey world and a sun from behind the first camera (the add-on adds no lights)."""
    world = bpy.data.worlds.new("World")
    world.color = (0.3, 0.3, 0.3)
    scene.world = world
    if world.node_tree is None:                       # Blender before 5.0 makes the node tree on request
        world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Strength"].default_value = 0.6
    sun = bpy.data.objects.new("Key light", bpy.data.lights.new("Key light", "SUN"))
    sun.data.energy = 3.0
    sun.rotation_euler = (0.35, -0.35, 0.0)
    scene.collection.objects.link(sun)


def render_camera(bpy, scene, path: str, samples: int) -> np.ndarray:
    """Cycles (CPU) through the scene camera at 100 % of its render size: RGBA (H, W, 4) in [0, 1], BGR order."""
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_denoising = samples >= 32
    scene.render.film_transparent = True
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"
    scene.render.filepath = path
    bpy.ops.render.render(write_still=True)
    return cv2.imread(path, cv2.IMREAD_UNCHANGED).astype(np.float32) / 255.0


def over_photo(rgba: np.ndarray, photo_path: str) -> np.ndarray:
    """The render laid over its photo (BGR uint8, the render's size)."""
    h, w = rgba.shape[:2]
    photo = cv2.imread(photo_path)
    if photo.shape[:2] != (h, w):
        photo = cv2.resize(photo, (w, h))
    alpha = rgba[..., 3:4] * OPACITY
    return ((rgba[..., :3] * alpha + photo.astype(np.float32) / 255.0 * (1 - alpha)) * 255).astype(np.uint8)


def outline_crop(rgba: np.ndarray, photo_path: str, width: int, height: int) -> np.ndarray:
    """The photo around the rendered hand, zoomed to (width, height), with the render's outline
    (alpha 0.5) drawn in yellow: where the mesh's edge falls on the photographed hand (BGR uint8)."""
    h, w = rgba.shape[:2]
    photo = cv2.imread(photo_path)
    if photo.shape[:2] != (h, w):
        photo = cv2.resize(photo, (w, h))
    drawn = (rgba[..., 3] > 0.5).astype(np.uint8)
    x, y, bw, bh = cv2.boundingRect(drawn)
    half = max(bw, bh * width / height) * 0.65                   # the hand and a margin, the panel's shape
    cx, cy = x + bw / 2, y + bh / 2
    x0, y0 = int(round(cx - half)), int(round(cy - half * height / width))
    x1, y1 = int(round(cx + half)), int(round(cy + half * height / width))
    pad = max(0, -x0, -y0, x1 - w, y1 - h)
    photo = cv2.copyMakeBorder(photo, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    drawn = cv2.copyMakeBorder(drawn, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    scale = width / (x1 - x0)
    crop = cv2.resize(photo[y0 + pad:y1 + pad, x0 + pad:x1 + pad], (width, height), interpolation=cv2.INTER_CUBIC)
    contours, _ = cv2.findContours(drawn[y0 + pad:y1 + pad, x0 + pad:x1 + pad], cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_NONE)
    contours = [((c + 0.5) * scale - 0.5).round().astype(np.int32) for c in contours]
    cv2.drawContours(crop, contours, -1, (0, 230, 255), 2, cv2.LINE_AA)
    return crop


def centroid(mask: np.ndarray) -> np.ndarray:
    """(x, y) pixel mean of a boolean mask; NaN when empty."""
    return np.argwhere(mask)[:, ::-1].mean(0) if mask.any() else np.full(2, np.nan)


def view_scores(alpha: np.ndarray, mask: np.ndarray, landmarks_px: np.ndarray, true_px: np.ndarray) -> dict:
    """IoU of render (alpha > 0.5) and true mask, centroid offset render - truth (px, (dx, dy)), and mean
    landmark distance (px) between the capture's projected landmarks (21, 2) and the true ones (21, 2)."""
    drawn, true = alpha > 0.5, mask > 127
    iou = float((drawn & true).sum() / max((drawn | true).sum(), 1))
    offset = centroid(drawn) - centroid(true)
    return {"iou": iou, "centroid_offset_px": offset.round(1).tolist(),
            "landmark_px": float(np.linalg.norm(landmarks_px - true_px, axis=1).mean())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("capture", help="a multi-view capture (.npz) from handcap estimate --views")
    parser.add_argument("--out", default=os.path.join("docs", "blender_views.png"))
    parser.add_argument("--samples", type=int, default=16, help="Cycles samples per pixel")
    parser.add_argument("--scale", type=float, default=0.6, help="the figure's size over the photos' (PNG bytes)")
    parser.add_argument("--truth", help="the synthetic sample folder the photos came from (scores, true dots)")
    args = parser.parse_args(argv)

    import bpy

    import blender_addon
    from blender_addon import build_camera, camera_math, import_capture
    from blender_addon.capture_format import load_capture
    from blender_addon.output_files import write_bytes

    capture = load_capture(args.capture)
    if capture.views is None:
        parser.error(f"{args.capture} has no views/* keys: not a multi-view capture")
    views = capture.views
    truth = json.load(open(os.path.join(args.truth, "truth.json"))) if args.truth else None

    bpy.ops.wm.read_factory_settings(use_empty=True)
    blender_addon.register()
    try:
        result = import_capture.import_files([os.path.abspath(args.capture)], bpy.context)[0]
        scene = bpy.context.scene
        scene.frame_set(1)
        light_scene(bpy, scene)
        panels = []
        with tempfile.TemporaryDirectory() as tmp:
            for c, camera in enumerate(result.cameras):
                build_camera.match_render_to_camera(scene, camera)
                rgba = render_camera(bpy, scene, os.path.join(tmp, f"view{c}.png"), args.samples)
                photo = bpy.path.abspath(camera.data.background_images[0].image.filepath)
                panel = over_photo(rgba, photo)
                if truth is not None:
                    x = capture.tracks[0].joints_3d[0].astype(np.float64)      # the engine's landmarks
                    px = camera_math.project(views.K[c], x @ np.asarray(views.R[c], np.float64).T + views.t[c])
                    true_px = np.asarray(truth["landmarks_2d"][c], np.float64)
                    mask = cv2.imread(os.path.join(args.truth, f"view{c}_mask.png"), cv2.IMREAD_GRAYSCALE)
                    scores = view_scores(rgba[..., 3], mask, px, true_px)
                    print(f"view {c} ({camera.name}): " + json.dumps(scores))
                    for p in true_px.round().astype(int):
                        cv2.circle(panel, tuple(p), 3, (40, 200, 40), -1, cv2.LINE_AA)
                cv2.putText(panel, camera.name, (10, 26), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2,
                            cv2.LINE_AA)
                panels.append(np.concatenate([panel, outline_crop(rgba, photo, panel.shape[1], panel.shape[0])], 0))
    finally:
        blender_addon.unregister()
    height = max(p.shape[0] for p in panels)
    row = np.concatenate([cv2.copyMakeBorder(p, 0, height - p.shape[0], 0, 8, cv2.BORDER_CONSTANT, value=0)
                          for p in panels], 1)[:, :-8]
    if args.scale != 1.0:
        row = cv2.resize(row, None, fx=args.scale, fy=args.scale, interpolation=cv2.INTER_AREA)
    png = cv2.imencode(".png", row, [cv2.IMWRITE_PNG_COMPRESSION, 9])[1]
    write_bytes(args.out, png.tobytes())
    print(f"{args.out}: {len(panels)} view(s), {row.shape[1]} x {row.shape[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
