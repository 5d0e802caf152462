"""A picture of the hand model: flat, fist, pinch, claw, spread (palm and side), shapes, both sides.

    python -m core.hand_model.picture --out docs/hand_model.png

Drawn with matplotlib (flat-shaded triangles sorted back to front, orthographic view), so it
needs no GPU or display: a quick look for torn or exploding vertices at the knuckles.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch

from .layer import HandLayer
from .model import KEYPOINT_BONES, load_hand_model
from .prior import PosePrior

# (flex, abd, twist) in radians per finger joint for a few named poses (right-hand convention).
# Per finger: the flexions of its three joints (MCP, PIP, DIP; thumb: CMC, MCP, IP).
_FINGER_JOINTS = {"index": (1, 2, 3), "middle": (4, 5, 6), "ring": (10, 11, 12), "pinky": (7, 8, 9),
                  "thumb": (13, 14, 15)}
_FLEX = {
    "fist": {"index": (1.15, 1.45, 0.8), "middle": (1.25, 1.55, 0.9), "ring": (1.25, 1.55, 0.9),
             "pinky": (1.25, 1.5, 0.85), "thumb": (-0.2, 0.9, 0.9)},
    "claw": {"index": (0.0, 1.5, 1.2), "middle": (0.0, 1.55, 1.2), "ring": (0.0, 1.55, 1.2),
             "pinky": (0.0, 1.55, 1.2), "thumb": (0.2, 0.3, 0.6)},
    "pinch": {"index": (0.35, 0.8, 0.9), "middle": (0.35, 0.45, 0.3), "ring": (0.35, 0.45, 0.3),
              "pinky": (0.35, 0.45, 0.3), "thumb": (0.13, 0.08, 0.56)},
}
# Extra (joint, component, radians) per pose: abduction and twist.
_EXTRA = {
    "spread": ((1, 1, -0.40), (10, 1, 0.30), (7, 1, 0.55), (13, 1, -0.5)),
    "fist": ((13, 1, 0.4), (13, 2, 0.45), (14, 1, -0.25), (14, 2, 0.25), (15, 1, -0.05)),
    "pinch": ((13, 2, 0.39), (14, 1, -0.23), (14, 2, 0.2), (15, 2, 0.08)),
}
NAMED_POSES = ("flat", "fist", "pinch", "claw", "spread")


def named_pose(prior: PosePrior, name: str) -> torch.Tensor:
    """(1, 16, 3) axis-angle for 'rest'/'flat' (zero pose), 'fist', 'pinch', 'claw' or 'spread'."""
    if name not in NAMED_POSES + ("rest",):
        raise ValueError(f"unknown pose {name!r}: use one of {NAMED_POSES}")
    angles = torch.zeros(1, 16, 3)
    for finger, flexes in _FLEX.get(name, {}).items():
        for joint, flex in zip(_FINGER_JOINTS[finger], flexes):
            angles[0, joint, 0] = flex
    for joint, component, value in _EXTRA.get(name, ()):
        angles[0, joint, component] = value
    return prior.from_angles(angles)


def draw_hand(ax, vertices: np.ndarray, faces: np.ndarray, keypoints: np.ndarray = None,
              view: np.ndarray = np.eye(3), title: str = "", half_extent: float = None) -> None:
    """Orthographic, flat-shaded mesh: ``view`` (3,3) rotates world into (right, up, toward viewer).

    ``half_extent`` (metres) fixes the zoom so that sizes compare across panels (default: fit)."""
    from matplotlib.collections import PolyCollection

    v = vertices @ view.T
    tri = v[faces]                                                       # (F, 3, 3)
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
    light = np.array([0.3, 0.5, 0.8]) / np.linalg.norm([0.3, 0.5, 0.8])
    shade = 0.25 + 0.75 * np.clip(normals @ light, 0, 1)
    front = normals[:, 2] > 0                                            # back-face culling
    order = np.argsort(tri[front, :, 2].mean(1))                         # painter's algorithm
    skin = np.array([0.93, 0.72, 0.60])
    colors = np.clip(shade[front][order, None] * skin, 0, 1)
    ax.add_collection(PolyCollection(tri[front][order, :, :2], facecolors=colors, edgecolors=colors, linewidths=0.2))
    if keypoints is not None:
        k = keypoints @ view.T
        for a, b in KEYPOINT_BONES:
            ax.plot(k[[a, b], 0], k[[a, b], 1], color="tab:blue", lw=0.8, alpha=0.8)
        ax.scatter(k[:, 0], k[:, 1], s=4, color="tab:red", zorder=3)
    lo, hi = v[:, :2].min(0), v[:, :2].max(0)
    centre, half = (lo + hi) / 2, half_extent or (hi - lo).max() / 2 * 1.1
    ax.set_xlim(centre[0] - half, centre[0] + half)
    ax.set_ylim(centre[1] - half, centre[1] + half)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=8)


def palm_view(tilt_deg: float = 25.0) -> np.ndarray:
    """Look at the palm (+z toward the viewer), tilted a little about the vertical for depth."""
    t = np.deg2rad(tilt_deg)
    return np.array([[np.cos(t), 0, np.sin(t)], [0, 1, 0], [-np.sin(t), 0, np.cos(t)]])


def side_view() -> np.ndarray:
    """Look from the thumb side (+x toward the viewer), palm to the right."""
    return np.array([[0, 0, -1], [0, 1, 0], [1, 0, 0]], float) @ np.array(
        [[np.cos(0.4), 0, np.sin(0.4)], [0, 1, 0], [-np.sin(0.4), 0, np.cos(0.4)]])


def knuckle_view(tilt_deg: float = 35.0) -> np.ndarray:
    """Look at the back of the hand from above the knuckles: the viewer sits on the dorsal side
    (-z), tilted ``tilt_deg`` toward the fingers (+y), so a fist shows its row of knuckles."""
    t = np.deg2rad(tilt_deg)
    toward = np.array([0.0, np.sin(t), -np.cos(t)])
    right = np.array([-1.0, 0.0, 0.0])
    return np.stack([right, np.cross(toward, right), toward])


def make_picture(out_path: str, hand_model: str = "open") -> str:
    """Write a grid of hands to ``out_path`` (PNG) and return the path."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    right, left = load_hand_model(hand_model, "right"), load_hand_model(hand_model, "left")
    layers = {"right": HandLayer(right), "left": HandLayer(left)}
    priors = {"right": PosePrior(right), "left": PosePrior(left)}
    generator = torch.Generator().manual_seed(7)
    sampled = priors["right"].sample(3, generator)
    panels = []  # (title, side, betas, pose, view); shape panels share one zoom
    for name in NAMED_POSES:
        pose = named_pose(priors["right"], name)
        panels.append((name + (" (zero pose)" if name == "flat" else "") + ", palm", "right", None, pose,
                       palm_view(40 if name == "fist" else 25)))
        panels.append((name + ", side", "right", None, pose, side_view()))
    panels.append(("fist, knuckles", "right", None, named_pose(priors["right"], "fist"), knuckle_view()))
    for i in range(1):
        panels.append((f"prior sample {i + 1}", "right", None, sampled[i:i + 1], palm_view(30)))
    for beta0 in (-2.0, 2.0):
        betas = torch.zeros(1, right.num_betas)
        betas[0, 0] = beta0
        panels.append((f"beta1 = {beta0:+.0f}", "right", betas, named_pose(priors["right"], "rest"), palm_view()))
    for k in (1, 2):
        betas = torch.zeros(1, right.num_betas)
        betas[0, k] = 2.5
        panels.append((f"beta{k + 1} = +2.5", "right", betas, named_pose(priors["right"], "rest"), palm_view()))
    flip = np.diag([-1.0, 1.0, 1.0])
    panels += [
        ("left, rest, palm", "left", None, named_pose(priors["left"], "rest"), flip @ palm_view() @ flip),
        ("left, fist", "left", None, named_pose(priors["left"], "fist"), flip @ palm_view(40) @ flip),
        ("left, prior sample", "left", None, priors["left"].sample(1, torch.Generator().manual_seed(3)),
         flip @ palm_view(30) @ flip),
    ]
    cols = 4
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 2.6, rows * 2.8), dpi=120)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (title, side, betas, pose, view) in zip(axes.ravel(), panels):
        with torch.no_grad():
            out = layers[side](betas=betas, pose=pose)
        model = right if side == "right" else left
        draw_hand(ax, out.vertices[0].numpy(), model.faces, out.keypoints[0].numpy(), view, title,
                  half_extent=0.14 if title.startswith("beta") else None)
    fig.suptitle(f"handcap hand model '{right.name}' ({right.num_vertices} vertices, {len(right.faces)} triangles)",
                 fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    tmp = out_path + ".tmp.png"
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, out_path)
    return out_path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="docs/hand_model.png", help="PNG to write (default: %(default)s)")
    parser.add_argument("--hand-model", default="open", help="'open' or a path to MANO_RIGHT.pkl / its folder")
    args = parser.parse_args(argv)
    print(make_picture(args.out, args.hand_model))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
