"""The skeleton floor: how close the open hand's 21 keypoints can come to real hands' true joints.

    python -m training.skeleton_floor --data freihand:../shared/real3d/ge_dev [--asset NPZ] [--json OUT]

For every annotated hand, the model's keypoints are fitted straight to the true 3D joints, to
convergence (L-BFGS, float64, up to 10 rounds of 200 iterations; on ge_dev the 5th to the 10th
round gain 0.05 mm): pose free (16 rotations, the root one is the global orientation),
translation free, shape betas free inside +-``--shape-limit`` (a steep penalty outside; about
+-1 sigma by default, the range a real adult hand should need). What is left, PA-MPJPE after a
similarity alignment as in FreiHAND's evaluation, is what no estimator built on this skeleton can
beat: a measure of where the skeleton's joints sit, not of any network.

Left hands (FreiHAND ``is_left``) are fitted mirrored, to the right model: the model's left side
is its mirror image, and Procrustes-aligned errors do not change under mirroring.

Also printed: the ratio (wrist -> middle MCP) / (middle MCP -> PIP) at zero shape, and a bone
length table (model at zero shape, median of the data's true joints, published proportions from
``core.hand_model.anatomy``). Units: millimetres in the output, metres inside.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

from core.hand_model import HandLayer
from core.hand_model.anatomy import published_keypoint_bones_mm
from core.hand_model.model import KEYPOINT_NAMES, OPEN_HAND_PATH, load_open_hand
from core.hand_model.rotations import axis_angle_to_matrix, matrix_to_quaternion, quaternion_to_axis_angle
from training.datasets.freihand import FreiHAND
from training.metrics import pa_errors_mm

PALM = [0, 5, 9, 13, 17]          # wrist and the four finger MCPs, in the 21-keypoint order
SHAPE_PENALTY = 1e-2              # m^2 of keypoint error per unit^2 of beta beyond the limit: steep
# Segments of the table: (name, keypoint a, keypoint b) in the 21-keypoint order.
TABLE_SEGMENTS = (("wrist -> middle MCP", 0, 9), ("middle MCP -> PIP", 9, 10), ("middle PIP -> DIP", 10, 11),
                  ("index MCP -> PIP", 5, 6), ("ring MCP -> PIP", 13, 14), ("pinky MCP -> PIP", 17, 18),
                  ("wrist -> index MCP", 0, 5), ("wrist -> pinky MCP", 0, 17),
                  ("wrist -> thumb CMC", 0, 1), ("thumb CMC -> MCP", 1, 2), ("thumb MCP -> IP", 2, 3))


def read_targets(spec: str) -> np.ndarray:
    """'freihand:DIR' -> (N, 21, 3) true joints in metres, left hands mirrored to right hands."""
    kind, _, root = spec.partition(":")
    if kind != "freihand" or not root:
        raise SystemExit(f"bad --data {spec!r}: use freihand:DIR (FreiHAND layout, evaluation split)")
    if not os.path.isdir(root):
        raise SystemExit(f"--data: {root} is not a folder")
    data = FreiHAND(root, "evaluation")
    xyz = data.xyz.astype(np.float64).copy()
    xyz[data.is_left, :, 0] *= -1.0
    return xyz


def kabsch_axis_angle(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(N, K, 3) point sets -> (N, 3) axis-angle of the rotation that best maps centred source onto target."""
    s = source - source.mean(1, keepdims=True)
    t = target - target.mean(1, keepdims=True)
    u, _, vt = np.linalg.svd(np.einsum("nki,nkj->nij", s, t))
    d = np.sign(np.linalg.det(np.einsum("nij,njk->nik", u, vt)))
    u[:, :, 2] *= d[:, None]
    rot = np.einsum("nij,njk->nki", u, vt)            # R = V U^T maps s to t
    rot = torch.as_tensor(rot)
    return quaternion_to_axis_angle(matrix_to_quaternion(rot)).numpy()


def fit_floor(layer: HandLayer, targets: np.ndarray, shape_limit: float, max_rounds: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Fit keypoints (N, 21, 3) to ``targets`` (N, 21, 3) metres; returns (fitted keypoints, betas (N, S))."""
    n = len(targets)
    target = torch.as_tensor(targets)
    rest = layer(keypoints_only=True).keypoints.detach().numpy().repeat(n, 0)        # (N, 21, 3)
    pose = torch.zeros(n, 16, 3, dtype=torch.float64)
    pose[:, 0] = torch.as_tensor(kabsch_axis_angle(rest[:, PALM], targets[:, PALM]))
    pose.requires_grad_()
    betas = torch.zeros(n, layer.num_betas, dtype=torch.float64, requires_grad=True)
    transl = torch.zeros(n, 3, dtype=torch.float64)
    with torch.no_grad():
        start = layer(betas, pose, keypoints_only=True).keypoints
        transl += (target - start).mean(1)
    transl.requires_grad_()
    optimizer = torch.optim.LBFGS([pose, betas, transl], lr=1.0, max_iter=200, history_size=50,
                                  tolerance_grad=1e-14, tolerance_change=1e-16, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        keypoints = layer(betas, pose, transl, keypoints_only=True).keypoints
        over = torch.relu(betas.abs() - shape_limit)
        loss = ((keypoints - target) ** 2).sum() + SHAPE_PENALTY * (over ** 2).sum()
        loss.backward()
        return loss

    previous = None
    for _ in range(max_rounds):
        loss = optimizer.step(closure).item()
        if previous is not None and previous - loss <= 1e-6 * loss:
            break
        previous = loss
    with torch.no_grad():
        keypoints = layer(betas, pose, transl, keypoints_only=True).keypoints
    return keypoints.numpy(), betas.detach().numpy()


def bone_lengths_mm(keypoints: np.ndarray) -> dict:
    """(..., 21, 3) metres -> {segment name: (...,) millimetres} for TABLE_SEGMENTS."""
    return {name: 1000 * np.linalg.norm(keypoints[..., b, :] - keypoints[..., a, :], axis=-1)
            for name, a, b in TABLE_SEGMENTS}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog="See the module docstring.")
    parser.add_argument("--data", required=True, metavar="freihand:DIR", help="FreiHAND-layout folder with true joints")
    parser.add_argument("--asset", default=OPEN_HAND_PATH, help="open hand .npz to measure (default: the shipped one)")
    parser.add_argument("--shape-limit", type=float, default=1.0, help="|beta| allowed before the penalty (default: %(default)s)")
    parser.add_argument("--json", help="also write the numbers here")
    args = parser.parse_args(argv)

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    targets = read_targets(args.data)
    model = load_open_hand("right", args.asset)
    layer = HandLayer(model, torch.float64)
    start = time.perf_counter()
    fitted, betas = fit_floor(layer, targets, args.shape_limit)
    errors = pa_errors_mm(fitted, targets)                                             # (N, 21)
    seconds = time.perf_counter() - start

    rest = layer(keypoints_only=True).keypoints[0].detach().numpy()
    model_bones = bone_lengths_mm(rest)
    data_bones = bone_lengths_mm(targets)
    published = published_keypoint_bones_mm()
    ratio = model_bones["wrist -> middle MCP"] / model_bones["middle MCP -> PIP"]
    result = {
        "data": args.data, "asset": args.asset, "count": int(len(targets)), "shape_limit": args.shape_limit,
        "pa_mpjpe_mm": float(errors.mean()),
        "per_keypoint_mm": {name: float(e) for name, e in zip(KEYPOINT_NAMES, errors.mean(0))},
        "max_abs_beta": float(np.abs(betas).max()),
        "ratio_wrist_mcp_over_mcp_pip": float(ratio),
        "bones_mm": {name: {"model_zero_shape": float(model_bones[name]), "data_median": float(np.median(data_bones[name])),
                            "published": published.get(name)} for name in model_bones},
        "seconds": seconds,
    }
    print(f"skeleton floor on {args.data} ({len(targets)} hands), asset {args.asset}")
    print(f"PA-MPJPE {result['pa_mpjpe_mm']:.2f} mm (fit to the true joints, |beta| <= {args.shape_limit:g}: "
          f"max |beta| {result['max_abs_beta']:.2f}; {seconds:.0f} s)")
    print("per keypoint (mm): " + ", ".join(f"{k} {v:.1f}" for k, v in result["per_keypoint_mm"].items()))
    print(f"(wrist -> middle MCP) / (middle MCP -> PIP) at zero shape: {ratio:.2f}")
    print("| segment | model, zero shape (mm) | data, median (mm) | published (mm) |\n|---|---|---|---|")
    for name, row in result["bones_mm"].items():
        pub = "-" if row["published"] is None else f"{row['published']:.1f}"
        print(f"| {name} | {row['model_zero_shape']:.1f} | {row['data_median']:.1f} | {pub} |")
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(result, f, indent=1)
        os.replace(tmp, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
