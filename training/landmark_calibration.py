"""Learn where the landmark network's 21 landmarks sit on the open hand (core.hand_model.landmark_points).

    python -m training.landmark_calibration [--count 1600] [--seed 7] [--out core/hand_model/assets/landmark_offsets.json]

Renders ``--count`` training-style synthetic hands (training.synth; never the held-out set, never
real photos), finds each with the engine's detector, and keeps the landmarks of the detection that
covers the true hand. The true pose, shape and camera of every render are known, so each landmark
can be compared with the open hand's keypoint it names; the 63 offsets (one 3-vector per landmark,
in the rest hand's frame, riding on the bones at that keypoint, see ``attached_joints``) that best
explain all the 2D landmarks from all the views at once are found by a robust least-squares fit
(Huber on the error over the hand's size in the image, so the detector's outright misses count
little). Left hands are mirrored into right hands first, as the engine does.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys

import numpy as np
import torch
from tqdm import tqdm

from core.engine.fitting import mirror_intrinsics, project_points
from core.hand_model import HandLayer, load_hand_model
from core.hand_model.landmark_points import OFFSETS_PATH, attachment_matrix, hand_scale, landmark_points
from core.hand_model.rotations import mirror_axis_angle

HUBER = 0.03          # of the hand's size in the image: quadratic below, linear above
STEPS = 400


def collect(count: int, seed: int) -> dict:
    """Render and detect: per found hand, the landmarks (21, 2) px and the render's truth (right-hand frame)."""
    from core.engine.pipeline import Engine, EngineOptions
    from training.engine_eval import pick_detection
    from training.synth import SyntheticHands

    raw = SyntheticHands(count=count, seed=seed, split="train")
    engine = Engine(EngineOptions())
    found = {key: [] for key in ("landmarks", "K", "keypoints_3d", "pose", "betas")}
    try:
        for index in tqdm(range(count), desc="render + detect", unit="img", file=sys.stderr):
            sample = raw[index]
            rgb = np.ascontiguousarray(sample["image"].numpy().transpose(1, 2, 0))
            detections = engine.detect(rgb)
            chosen = pick_detection(detections, sample["keypoints_2d"].numpy())
            if chosen is None or detections[chosen].keypoints_2d is None:
                continue
            landmarks = np.asarray(detections[chosen].keypoints_2d, np.float64)
            K = sample["K"].numpy().astype(np.float64)
            keypoints = sample["joints_3d"].numpy().astype(np.float64)
            pose = sample["pose"].numpy().astype(np.float64)
            if bool(sample["is_left"]):          # into the right-hand frame
                width = rgb.shape[1]
                landmarks[:, 0] = width - 1 - landmarks[:, 0]
                K = mirror_intrinsics(K, width)
                keypoints[:, 0] *= -1
                pose = mirror_axis_angle(torch.as_tensor(pose)).numpy()
            for key, value in zip(found, (landmarks, K, keypoints, pose, sample["betas"].numpy())):
                found[key].append(value)
    finally:
        engine.close()
    return {key: np.stack(value) for key, value in found.items()}


def posed_hands(data: dict, layer: HandLayer) -> dict:
    """The layer's keypoints, world rotations and scale for every render, placed as rendered."""
    with torch.no_grad():
        out = layer(torch.as_tensor(data["betas"], dtype=torch.float64),
                    torch.as_tensor(data["pose"], dtype=torch.float64), keypoints_only=True)
    truth = torch.as_tensor(data["keypoints_3d"], dtype=torch.float64)
    transl = truth[:, 0] - out.keypoints[:, 0]
    keypoints = out.keypoints + transl[:, None]
    mismatch = float((keypoints - truth).norm(dim=-1).max())
    if mismatch > 1e-3:
        raise RuntimeError(f"the layer does not reproduce the renders' keypoints ({mismatch * 1000:.2f} mm off)")
    return {"keypoints": keypoints, "world_rotations": out.world_rotations, "rest_joints": out.rest_joints}


def fit_offsets(data: dict, layer: HandLayer, template_length: float, steps: int = STEPS) -> tuple[np.ndarray, dict]:
    """(21, 3) offsets in metres that best explain the 2D landmarks, and the fit's report."""
    posed = posed_hands(data, layer)
    scale = hand_scale(posed["rest_joints"], template_length)
    attachment = attachment_matrix().double()
    K = torch.as_tensor(data["K"], dtype=torch.float64)
    landmarks = torch.as_tensor(data["landmarks"], dtype=torch.float64)
    truth_2d = project_points(posed["keypoints"], K)
    size = (truth_2d.amax(1) - truth_2d.amin(1)).amax(-1)                    # (N,) px, the hand's extent

    def errors(offsets):                                                      # (N, 21) in hand sizes
        points = landmark_points(posed["keypoints"], posed["world_rotations"], scale, offsets, attachment)
        return (project_points(points, K) - landmarks).norm(dim=-1) / size[:, None]

    offsets = torch.zeros(21, 3, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([offsets], lr=5e-4)
    for _ in range(steps):
        e = errors(offsets)
        loss = torch.where(e < HUBER, 0.5 * e ** 2, HUBER * (e - 0.5 * HUBER)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        before, after = errors(torch.zeros_like(offsets)), errors(offsets)
    report = {"median_error_before": before.median(0).values.tolist(),
              "median_error_after": after.median(0).values.tolist()}
    return offsets.detach().numpy(), report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.landmark_calibration", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1600, help="synthetic renders (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=7, help="synthetic seed, train style (default: %(default)s)")
    parser.add_argument("--cache", help="an .npz to keep the detections in (reused when it exists)")
    parser.add_argument("--out", default=OFFSETS_PATH, help="offsets JSON to write (default: the shipped asset)")
    args = parser.parse_args(argv)
    if args.cache and os.path.exists(args.cache):
        data = dict(np.load(args.cache))
    else:
        data = collect(args.count, args.seed)
        if args.cache:
            np.savez(args.cache, **data)
    layer = HandLayer(load_hand_model("open", side="right"), dtype=torch.float64)
    with torch.no_grad():
        rest = layer(torch.zeros(1, layer.num_betas, dtype=torch.float64)).rest_joints
    template_length = float((rest[0, 4] - rest[0, 0]).norm())
    offsets, report = fit_offsets(data, layer, template_length)
    result = {
        "what": "offsets of MediaPipe's 21 hand landmarks from the open hand's keypoints (FreiHAND order), "
                "in the rest right hand's frame (x thumbward, y along the fingers, z out of the palm), "
                "at the template's length; see core/hand_model/landmark_points.py",
        "made_by": f"python -m training.landmark_calibration --count {args.count} --seed {args.seed}",
        "date": datetime.date.today().isoformat(),
        "renders_used": int(len(data["landmarks"])),
        "template_length_mm": round(template_length * 1000.0, 3),
        "offsets_mm": np.round(offsets * 1000.0, 2).tolist(),
        "median_error_of_hand_size": {"before": np.round(report["median_error_before"], 4).tolist(),
                                      "after": np.round(report["median_error_after"], 4).tolist()},
    }
    temporary = args.out + ".tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=1)
    os.replace(temporary, args.out)
    print(f"{len(data['landmarks'])} hands; offsets (mm):")
    for k, row in enumerate(result["offsets_mm"]):
        print(f"  {k:2d} {row}  median error {report['median_error_before'][k]:.3f} -> {report['median_error_after'][k]:.3f}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
