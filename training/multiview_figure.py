"""Look at one multi-view estimate against the truth: every view with the fitted hand drawn on it,
and the hand from the side and from above, where depth errors show (issue 31).

    python -m training.multiview_figure --data DIR [--index I] [--out docs/multiview_views.png] [--device D]

DIR holds samples of ``python -m training.synth.multiview``. Top row: each view's picture (zoomed to the hand) with the
hand fitted to all the views (``estimate_views`` with every view; mesh and keypoints projected
through that view's camera) and the true landmarks as green dots. Bottom row: the keypoints in view
0's camera space, NOT aligned (so a hand placed too far or too near shows as a shift in depth), seen
along view 0's x axis (depth to the right, image y down) and along its y axis (image x to the right,
depth down): truth green, the 1-view estimate red, the all-views estimate blue.
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
from core.hand_model import HandLayer, load_hand_model

from .multiview_eval import estimate_views_function, match_hand, sample_folders
from .plots import figure_png
from .views import VIEWS, draw_skeleton

COLOURS = {"truth": "green", "1 view": "red"}
MANY_COLOUR = "blue"


def fitted(engine, estimate_views, layers, pictures, cameras, truth):
    """The matched hand of ``estimate_views`` on these views: (hand, vertices (V, 3) view 0 frame) or None."""
    try:
        hands = estimate_views(engine, pictures, cameras)
    except NotImplementedError:
        return None
    i = match_hand(hands, truth["landmarks_2d"][0])
    if i is None:
        return None
    hand = hands[i]
    with torch.no_grad():
        out = layers[hand.side](torch.as_tensor(hand.betas[None], dtype=torch.float32),
                                torch.as_tensor(hand.pose[None], dtype=torch.float32),
                                torch.as_tensor(hand.transl[None], dtype=torch.float32))
    return hand, out.vertices[0].numpy().astype(np.float64)


def zoom(image: np.ndarray, points: np.ndarray, pad: float = 0.6) -> np.ndarray:
    """The part of ``image`` around ``points`` (N, 2) pixels, their box grown by ``pad`` of its side."""
    height, width = image.shape[:2]
    low, high = np.clip(points.min(0), 0, [width, height]), np.clip(points.max(0), 0, [width, height])
    half = max((high - low).max() * (0.5 + pad), 40.0)
    centre = (low + high) / 2
    x0, y0 = np.clip(np.round(centre - half), 0, None).astype(int)
    x1, y1 = np.round(centre + half).astype(int)
    return image[y0:min(y1, height), x0:min(x1, width)]


def figure(pictures, cameras, truth, results: dict, faces: dict, title: str) -> bytes:
    """results: label -> (hand, vertices) or None; the last one found is drawn on the pictures."""
    views = len(pictures)
    columns = max(views, 2)
    fig = Figure(figsize=(3.6 * columns, 6.4), dpi=90)
    FigureCanvasAgg(fig)
    shown_label = ([name for name, r in results.items() if r is not None] or list(results))[-1]
    shown = results[shown_label]
    for v, (picture, camera) in enumerate(zip(pictures, cameras)):
        bgr = cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)
        if shown is not None:
            hand, vertices = shown
            draw_mesh(bgr, camera.to_view(vertices), faces[hand.side], camera.K, MESH_COLOUR[hand.side])
            draw_keypoints(bgr, camera.project(hand.joints_3d))
        for p in truth["landmarks_2d"][v]:
            cv2.circle(bgr, tuple(int(c) for c in np.round(p)), 3, (0, 200, 0), -1, cv2.LINE_AA)
        points = truth["landmarks_2d"][v] if shown is None else np.concatenate(
            [truth["landmarks_2d"][v], camera.project(shown[0].joints_3d)])
        ax = fig.add_subplot(2, columns, v + 1)
        ax.imshow(cv2.cvtColor(zoom(bgr, points), cv2.COLOR_BGR2RGB))
        ax.set_title(f"view {v}: {shown_label} fit" if shown else f"view {v}: {shown_label}: no hand", fontsize=8)
        ax.axis("off")
    for c, (label, i, j) in enumerate(VIEWS):
        ax = fig.add_subplot(2, columns, columns + 1 + c)
        draw_skeleton(ax, truth["landmarks_3d"], i, j, COLOURS["truth"])
        legend = [f"truth ({truth['side']})"]
        for name, result in results.items():
            if result is None:
                continue
            hand = result[0]
            error = 1000 * np.linalg.norm(hand.joints_3d - truth["landmarks_3d"], axis=-1).mean()
            draw_skeleton(ax, hand.joints_3d, i, j, COLOURS.get(name, MANY_COLOUR))
            legend.append(f"{name} ({hand.side}): {error:.0f} mm")
        ax.set_aspect("equal")
        ax.invert_yaxis()
        ax.set_title(f"view 0 frame, {label}\n" + "; ".join(legend), fontsize=7)
        ax.tick_params(labelsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return figure_png(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.multiview_figure", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", metavar="DIR", required=True, help="samples of python -m training.synth.multiview")
    parser.add_argument("--index", type=int, default=0, help="which sample (default: %(default)s)")
    parser.add_argument("--out", default="docs/multiview_views.png", help="PNG to write (default: %(default)s)")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default: %(default)s)")
    args = parser.parse_args(argv)
    from core.engine.pipeline import Engine, EngineOptions
    from training.synth.multiview import read_sample
    try:
        folder = sample_folders(args.data)[args.index]
    except (FileNotFoundError, IndexError) as e:
        parser.error(str(e) or f"--index {args.index} out of range")
    pictures, cameras, truth = read_sample(folder)
    engine = Engine(EngineOptions(device=args.device))
    estimate_views = estimate_views_function()
    try:
        models = {side: load_hand_model(engine.network.config.hand_model, side) for side in ("right", "left")}
        layers = {side: HandLayer(model, torch.float32) for side, model in models.items()}
        faces = {side: model.faces for side, model in models.items()}
        results = {"1 view": fitted(engine, estimate_views, layers, pictures[:1], cameras[:1], truth)}
        if len(pictures) > 1:
            results[f"{len(pictures)} views"] = fitted(engine, estimate_views, layers, pictures, cameras, truth)
        png = figure(pictures, cameras, truth, results, faces,
                     f"{os.path.basename(folder)} of {args.data} ({estimate_views.__module__}.{estimate_views.__name__})")
    finally:
        engine.close()
    write_bytes(args.out, png)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
