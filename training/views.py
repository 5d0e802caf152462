"""Look at estimated hands from three sides: the photo's overlay, and the 3D hand from the side and
from above (an overlay hides depth errors: a finger bent toward the camera looks right in it).

    python -m training.views --images PHOTO... --out views.png
    python -m training.views --data freihand:../shared/real3d/ge_dev --index 0 40 80 --out views.png

Each row is one photo: the engine's hand drawn on it, then the camera-space mesh seen along the
camera's x axis (depth to the right, image y down) and along its y axis (image x to the right,
depth down), orthographic, with the 21 keypoints in red; with ``--data`` the true keypoints are
drawn in green in all three, after moving them onto the estimate's wrist in the 3D views.
"""

from __future__ import annotations

import argparse
import os
import sys

import cv2
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from blender_addon.output_files import write_bytes
from core.engine.overlay import MESH_COLOUR, draw_keypoints, draw_mesh
from core.engine.run import intrinsics, read_image, sidecar_intrinsics
from core.hand_model import HandLayer, load_hand_model
from core.hand_model.model import KEYPOINT_BONES

from .plots import figure_png

VIEWS = (("side: depth ->, image y down", 2, 1), ("top: image x ->, depth down", 0, 2))


def photos_from_args(args) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """(title, RGB (H, W, 3) uint8, K (3, 3), true keypoints (21, 3) metres or None) per row."""
    rows = []
    if args.data:
        from training.evaluate import RAW_SOURCES, parse_spec
        kind, value = parse_spec(args.data)
        raw = RAW_SOURCES[kind](value)
        for index in args.index:
            sample = raw[index]
            rgb = np.ascontiguousarray(sample["image"].numpy().transpose(1, 2, 0))
            rows.append((f"{args.data} #{index}", rgb, sample["K"].numpy().astype(np.float64),
                         sample["joints_3d"].numpy().astype(np.float64)))
    for path in args.images or []:
        rgb, _ = read_image(path)
        height, width = rgb.shape[:2]
        K = intrinsics(width, height, K_file=sidecar_intrinsics(path)).astype(np.float64)
        rows.append((os.path.basename(path), rgb, K, None))
    return rows


def estimate(engine, layers, rgb, K):
    """The engine's hands in a photo: [(side, vertices (V, 3), keypoints (21, 3), pixels (21, 2))]."""
    hands = engine.estimate_frames([rgb], K)[0]
    found = []
    for hand in hands:
        with torch.no_grad():
            out = layers[hand.side](torch.as_tensor(hand.betas[None]), torch.as_tensor(hand.pose[None]),
                                    torch.as_tensor(hand.transl[None]))
        found.append((hand.side, out.vertices[0].numpy().astype(np.float64), hand.joints_3d.astype(np.float64),
                      hand.keypoints_2d))
    return found


def draw_skeleton(ax, points: np.ndarray, i: int, j: int, colour: str) -> None:
    for a, b in KEYPOINT_BONES:
        ax.plot(points[[a, b], i], points[[a, b], j], "-", color=colour, linewidth=1.2)


def views_png(rows, engine, faces: dict, layers: dict) -> bytes:
    figure = Figure(figsize=(10.5, 3.4 * len(rows)), dpi=80)
    FigureCanvasAgg(figure)
    for r, (title, rgb, K, truth) in enumerate(rows):
        found = estimate(engine, layers, rgb, K)
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        for side, vertices, _, pixels in found:
            draw_mesh(bgr, vertices, faces[side], K, MESH_COLOUR[side])
            draw_keypoints(bgr, pixels)
        if truth is not None:
            true_2d = truth @ K.T
            for p in true_2d[:, :2] / true_2d[:, 2:]:
                cv2.circle(bgr, tuple(np.round(p).astype(int)), 2, (0, 200, 0), -1, cv2.LINE_AA)
        ax = figure.add_subplot(len(rows), 3, 3 * r + 1)
        ax.imshow(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        ax.set_title(f"{title}: {len(found)} hand(s)", fontsize=8)
        ax.axis("off")
        for c, (label, i, j) in enumerate(VIEWS):
            ax = figure.add_subplot(len(rows), 3, 3 * r + 2 + c)
            for side, vertices, keypoints, _ in found[:1]:
                ax.triplot(vertices[:, i], vertices[:, j], faces[side], linewidth=0.15, color="0.55")
                draw_skeleton(ax, keypoints, i, j, "red")
                if truth is not None:
                    draw_skeleton(ax, truth - truth[0] + keypoints[0], i, j, "green")
            ax.set_aspect("equal")
            ax.invert_yaxis()
            ax.set_title(label, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    figure.tight_layout()
    return figure_png(figure)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.views", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", nargs="+", metavar="PHOTO", help="photos (K from PHOTO_K.npy/.json beside them)")
    parser.add_argument("--data", metavar="SPEC", help="freihand:DIR or synthetic:N, with true keypoints")
    parser.add_argument("--index", type=int, nargs="+", default=[0], help="samples of --data to show")
    parser.add_argument("--out", required=True, help="PNG to write")
    args = parser.parse_args(argv)
    if not args.images and not args.data:
        parser.error("give --images or --data")
    from core.engine.inputs import InputError
    from core.engine.pipeline import Engine, EngineOptions
    from training.evaluate import SpecError
    try:
        rows = photos_from_args(args)
    except (InputError, SpecError, IndexError) as e:
        parser.error(str(e) or "--index out of range")
    engine = Engine(EngineOptions())
    try:
        models = {side: load_hand_model(engine.network.config.hand_model, side) for side in ("right", "left")}
        layers = {side: HandLayer(model, torch.float32) for side, model in models.items()}
        faces = {side: model.faces for side, model in models.items()}
        png = views_png(rows, engine, faces, layers)
    finally:
        engine.close()
    write_bytes(args.out, png)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
