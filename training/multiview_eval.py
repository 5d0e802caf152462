"""Score the engine on synthetic multi-view samples with 1, 2, 3... of their views (issue 31).

    python -m training.evaluate --data multiview:DIR --views 1 2 3 [--json OUT.json] [--device D]

DIR holds samples from ``python -m training.synth.multiview`` (NNNNN/view*.png, cameras.json,
truth.json). For each view count k, every sample's first k views and cameras go through
``core.multiview.estimate.estimate_views(engine, pictures[:k], cameras[:k])``, whose hands are in
view 0's camera frame. Until that function exists on the branch, a stand-in answers k = 1 with the
single-view engine (``Engine.estimate_frames`` with view 0's K) and k > 1 is reported as not run.

Matching: of the hands returned, the one whose 2D keypoints in view 0 lie closest on average to the
true landmarks' projection counts, if that distance is within video_eval.MATCH_FRACTION of the true
hand's 2D box diagonal (video_eval.match_frame); otherwise the sample's hand is not found. The side
is not used to match: ``side_right_pct`` scores it.

Metrics per k (the true hand's landmark points, view 0's camera space; millimetres), over the
samples whose hand every scored k found ("the same hands"; each k's own set is in ``own``):
  camera_mpjpe_mm   mean 3D distance per keypoint, no alignment: depth and placement count
  rr_mpjpe_mm       root-relative (wrists at the origin), no alignment: orientation counts
  pa_mpjpe_mm       after Procrustes alignment (scale, rotation, translation)
  wrist_depth_mm    mean |z error| of the wrist
  rr_depth_mm       mean |z error| of the root-relative keypoints
  side_right_pct    found hands given the true side, percent
  found, count      samples whose hand was found, samples scored
The JSON adds per k: ``own`` (the metrics over that k's own found hands), ``found_samples`` and
``per_sample`` (camera_mm, rr_mm, side_right of each found hand, in found_samples' order).
"""

from __future__ import annotations

import glob
import os
import sys
import time

import numpy as np
from tqdm import tqdm

from training import metrics
from training.video_eval import match_frame

METRIC_KEYS = ("camera_mpjpe_mm", "rr_mpjpe_mm", "pa_mpjpe_mm", "wrist_depth_mm", "rr_depth_mm", "side_right_pct")


def single_view_stand_in(engine, images: list, cameras: list) -> list:
    """The single-view engine's hands in view 0, for k = 1, until core.multiview.estimate lands."""
    if len(images) != 1:
        raise NotImplementedError("core.multiview.estimate.estimate_views is not on this branch yet")
    return engine.estimate_frames([images[0]], np.asarray(cameras[0].K, np.float64))[0]


def estimate_views_function():
    """core.multiview.estimate.estimate_views, or the single-view stand-in when it is missing."""
    try:
        from core.multiview.estimate import estimate_views
    except ImportError:
        return single_view_stand_in
    return estimate_views


def sample_folders(folder: str) -> list[str]:
    """The sample folders of DIR (those holding a cameras.json and a truth.json), sorted."""
    found = sorted(os.path.dirname(p) for p in glob.glob(os.path.join(folder, "*", "truth.json")))
    found = [f for f in found if os.path.isfile(os.path.join(f, "cameras.json"))]
    if not found:
        raise FileNotFoundError(f"{folder}: no multi-view samples (NNNNN/cameras.json + truth.json); "
                                f"write some with python -m training.synth.multiview --out {folder}")
    return found


def match_hand(hands: list, true_2d: np.ndarray):
    """The index of the hand (HandEstimate, keypoints_2d in view 0) matching the true hand's (21, 2)
    view-0 landmarks, or None."""
    pairs = match_frame(true_2d[None], np.ones(1, bool), [(i, h.keypoints_2d) for i, h in enumerate(hands)])
    return pairs.get(0)


def score(pred: np.ndarray, true: np.ndarray, side_right: np.ndarray) -> dict:
    """(N, 21, 3) predicted and true keypoints (metres, one camera space), (N,) bool -> the metrics."""
    if not len(pred):
        return {"count": 0}
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    rel_pred, rel_true = pred - pred[:, :1], true - true[:, :1]
    out = {"count": len(pred),
           "camera_mpjpe_mm": float(1000.0 * metrics.point_errors(pred, true).mean()),
           "rr_mpjpe_mm": metrics.root_relative_summary(rel_pred, rel_true)["rr_mpjpe_mm"],
           "pa_mpjpe_mm": float(metrics.pa_errors_mm(pred, true).mean())}
    out.update(metrics.depth_errors_mm(pred, true))
    out["side_right_pct"] = float(100.0 * np.mean(side_right))
    return out


def per_sample_mm(pred: np.ndarray, true: np.ndarray, root_relative: bool = False) -> float:
    """One hand's mean keypoint error (21, 3) metres -> mm, camera space or root-relative."""
    if root_relative:
        pred, true = pred - pred[:1], true - true[:1]
    return round(float(1000.0 * metrics.point_errors(pred, true).mean()), 2)


def evaluate_samples(samples: list, views: list, estimate) -> dict:
    """Per k: matched hands of ``samples`` [(pictures, cameras, truth)] with ``estimate(pictures[:k],
    cameras[:k]) -> hands``; the metrics over the same hands and over each k's own."""
    found = {k: {} for k in views}          # k -> {sample: (joints (21, 3), side right)}
    skipped, seconds = {}, {k: 0.0 for k in views}
    for s, (pictures, cameras, truth) in enumerate(samples):
        for k in views:
            if k in skipped:
                continue
            if k > len(pictures):
                raise ValueError(f"sample {s} has {len(pictures)} view(s), fewer than {k}")
            start = time.perf_counter()
            try:
                hands = estimate(pictures[:k], cameras[:k])
            except NotImplementedError as e:
                skipped[k] = str(e)
                continue
            seconds[k] += time.perf_counter() - start
            i = match_hand(hands, np.asarray(truth["landmarks_2d"][0]))
            if i is not None:
                found[k][s] = (np.asarray(hands[i].joints_3d, np.float64), hands[i].side == truth["side"])
    scored = [k for k in views if k not in skipped]
    same = sorted(set.intersection(*(set(found[k]) for k in scored))) if scored else []
    result = {"count": len(samples), "views": list(views), "same_hands": len(same), "per_k": {}}
    for k in views:
        if k in skipped:
            result["per_k"][str(k)] = {"skipped": skipped[k]}
            continue
        def metrics_over(indices):
            return score(np.array([found[k][s][0] for s in indices]).reshape(-1, 21, 3),
                         np.array([samples[s][2]["landmarks_3d"] for s in indices]).reshape(-1, 21, 3),
                         np.array([found[k][s][1] for s in indices], bool))
        own = sorted(found[k])
        entry = {"found": len(found[k]), "seconds_per_sample": seconds[k] / max(len(samples), 1), **metrics_over(same),
                 "own": metrics_over(own), "found_samples": own,
                 "per_sample": {"camera_mm": [per_sample_mm(found[k][s][0], samples[s][2]["landmarks_3d"]) for s in own],
                                "rr_mm": [per_sample_mm(found[k][s][0], samples[s][2]["landmarks_3d"], True) for s in own],
                                "side_right": [bool(found[k][s][1]) for s in own]}}
        result["per_k"][str(k)] = entry
    return result


def evaluate_multiview(folder: str, views: list, device: str = "auto", weights: str = None) -> dict:
    """Load DIR's samples, build the engine, score every k in ``views``."""
    from core.engine.pipeline import Engine, EngineOptions
    from training.synth.multiview import read_sample

    folders = sample_folders(folder)
    samples = [read_sample(f, max(views)) for f in tqdm(folders, desc="reading", unit="sample", file=sys.stderr)]
    engine = Engine(EngineOptions(device=device, weights=weights))
    estimate_views = estimate_views_function()
    try:
        with tqdm(total=len(samples) * len(views), desc="estimating", unit="run", file=sys.stderr) as bar:
            def estimate(pictures, cameras):
                bar.update(1)
                return estimate_views(engine, pictures, cameras)
            result = evaluate_samples(samples, views, estimate)
    finally:
        engine.close()
    result.update(data=f"multiview:{folder}", samples=[os.path.basename(f) for f in folders],
                  estimate_views=f"{estimate_views.__module__}.{estimate_views.__name__}")
    return result


def table(result: dict) -> str:
    """The per-k table (same hands), one row per view count."""
    head = f"{'views':>5} {'found':>7} {'camera':>8} {'root-rel':>9} {'PA':>7} {'wrist z':>8} {'rr z':>7} {'side ok':>8}"
    lines = [f"multi-view: {result['count']} samples, {result['same_hands']} hands found with every view count "
             f"(errors in mm over those)", head]
    for k, e in result["per_k"].items():
        if "skipped" in e:
            lines.append(f"{k:>5}  not run: {e['skipped']}")
            continue
        cells = [f"{e.get(m, float('nan')):.1f}" for m in METRIC_KEYS]
        lines.append(f"{k:>5} {e['found']:>3}/{result['count']:<3} {cells[0]:>8} {cells[1]:>9} {cells[2]:>7} "
                     f"{cells[3]:>8} {cells[4]:>7} {cells[5] + '%':>8}")
    return "\n".join(lines)
