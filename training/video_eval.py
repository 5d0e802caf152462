"""Score ``handcap estimate`` on rendered video clips against their exact ground truth (issue 19).

    python -m training.evaluate --video DIR [--json OUT.json] [--smoothing S] [--device D]

DIR holds clips from ``python -m training.synth --video DIR`` (clip_NNN.mp4, clip_NNN_K.npy,
clip_NNN_truth.npz). Each clip goes through the engine's video path as a user's run does
(``core.engine.run.Estimator``, default options or ``--smoothing``, the clip's intrinsics from its
_K.npy sidecar)
into a capture file, and the capture's tracks are compared with the truth's hands.

Matching, per frame: every true hand and every valid track estimate are paired one to one (the
pairing with the smallest summed mean 2D distance); a pair counts when the estimate's 2D landmarks
lie on average within MATCH_FRACTION of the true hand's 2D box diagonal. Hidden hands take part, so
that a track filled across frames where its hand is behind the other one is paired with its own hand,
not with the hand in front; among pairings with as many pairs, the one pairing the most visible
hands wins (a hidden hand does not take a visible hand's only track); only the pairs of *visible*
true hands (truth ``visible``) are scored.
Metrics (true hand's landmark points, camera space; millimetres):
  mpjpe_mm           mean 3D distance per keypoint (camera space: depth errors count), mean and
                     median over frames (the JSON keeps every frame's value under per_frame)
  rr_mpjpe_mm        root-relative (wrist at the origin)
  pa_mpjpe_mm        after Procrustes alignment (scale, rotation, translation)
  accel_error_mm     mean |a_est - a_true|, a = x[t-1] - 2 x[t] + x[t+1] of the root-relative
                     keypoints (mm/frame^2, as video hand and body papers report it), over frames
                     whose neighbours are matched to the same track; accel_truth_mm is |a_true|
  id_switches        times a true hand's matched track changes between consecutive matched frames
  tracks_per_hand    distinct tracks matched to a true hand (1 is right)
  frames_lost        visible true-hand frames without a matched estimate (of frames_visible)
  extra_tracks       tracks in the capture never matched to a true hand
"""

from __future__ import annotations

import glob
import itertools
import os
import tempfile
import time

import numpy as np

from training import metrics

MATCH_FRACTION = 0.5


def acceleration(x: np.ndarray) -> np.ndarray:
    """(T, ...) positions -> (T - 2, ...) second differences x[t-1] - 2 x[t] + x[t+1]."""
    return x[:-2] - 2 * x[1:-1] + x[2:]


def match_frame(true_2d: np.ndarray, visible: np.ndarray, estimates: list, prefer: np.ndarray = None) -> dict:
    """true_2d (H, 21, 2), visible (H,): the hands that take part, estimates [(track id, (21, 2))] ->
    {hand: track id}: the most pairs; among those, the pairing of the most ``prefer`` (H,) hands
    (default: all alike), then the smallest summed distance."""
    hands = [h for h in range(len(true_2d)) if visible[h]]
    prefer = np.ones(len(true_2d), bool) if prefer is None else np.asarray(prefer, bool)
    for count in range(min(len(hands), len(estimates)), 0, -1):
        best, best_key = {}, None
        for chosen in itertools.permutations(range(len(estimates)), count):
            for subset in itertools.combinations(hands, count):
                pairs, cost = {}, 0.0
                for h, e in zip(subset, chosen):
                    box = true_2d[h].max(0) - true_2d[h].min(0)
                    distance = np.linalg.norm(estimates[e][1] - true_2d[h], axis=-1).mean()
                    if distance > MATCH_FRACTION * np.linalg.norm(box):
                        break
                    pairs[h], cost = estimates[e][0], cost + distance
                else:
                    key = (int(sum(prefer[h] for h in pairs)), -cost)
                    if best_key is None or key > best_key:
                        best, best_key = pairs, key
        if best:
            return best
    return {}


def match_tracks(truth: dict, tracks: list) -> tuple[list, np.ndarray]:
    """truth (landmarks_2d (F, H, 21, 2), visible (F, H)), capture HandTracks -> (rows: per track
    {frame: row of its valid estimates}, matched (F, H): the track paired with each visible true hand, -1 none)."""
    frames, hands = truth["visible"].shape
    rows = [{int(f): r for r, f in enumerate(t.frame_index) if t.valid[r]} for t in tracks]
    matched = np.full((frames, hands), -1)
    for f in range(frames):
        estimates = [(i, tracks[i].keypoints_2d[rows[i][f]]) for i in range(len(tracks)) if f in rows[i]]
        for h, i in match_frame(truth["landmarks_2d"][f], np.ones(hands, bool), estimates, truth["visible"][f]).items():
            if truth["visible"][f, h]:
                matched[f, h] = i
    return rows, matched


def score_clip(truth: dict, tracks: list) -> dict:
    """Per-clip metrics. truth: the clip's _truth.npz arrays; tracks: capture HandTracks."""
    frames, hands = truth["visible"].shape
    rows, matched = match_tracks(truth, tracks)
    pred, true, accel_err, accel_true, switches, per_hand = [], [], [], [], 0, []
    for h in range(hands):
        ids = matched[:, h]
        seen = ids[ids >= 0]
        switches += int((seen[1:] != seen[:-1]).sum())
        per_hand.append(len(set(seen.tolist())))
        for f in np.flatnonzero(ids >= 0):
            pred.append(tracks[ids[f]].joints_3d[rows[ids[f]][f]])
            true.append(truth["landmarks_3d"][f, h])
        for f in range(1, frames - 1):
            i = ids[f]
            if i < 0 or ids[f - 1] != i or ids[f + 1] != i:
                continue
            est = np.stack([tracks[i].joints_3d[rows[i][g]] for g in (f - 1, f, f + 1)]).astype(np.float64)
            gt = truth["landmarks_3d"][f - 1:f + 2, h].astype(np.float64)
            a_est, a_gt = acceleration(est - est[:, :1])[0], acceleration(gt - gt[:, :1])[0]
            accel_err.append(1000 * np.linalg.norm(a_est - a_gt, axis=-1).mean())
            accel_true.append(1000 * np.linalg.norm(a_gt, axis=-1).mean())
    visible = int(truth["visible"].sum())
    entry = {"frames": int(frames), "hands": int(hands), "tracks": len(tracks), "frames_visible": visible,
             "frames_lost": int(visible - (matched >= 0).sum()), "id_switches": switches,
             "tracks_per_hand": per_hand, "extra_tracks": len(set(range(len(tracks))) - set(matched.ravel().tolist()))}
    if pred:
        pred, true = np.stack(pred).astype(np.float64), np.stack(true).astype(np.float64)     # (N, 21, 3) metres
        per_frame = {"mpjpe_mm": 1000 * metrics.point_errors(pred, true).mean(-1),
                     "rr_mpjpe_mm": 1000 * metrics.point_errors(pred - pred[:, :1], true - true[:, :1]).mean(-1),
                     "pa_mpjpe_mm": metrics.pa_errors_mm(pred, true).mean(-1)}
        entry["per_frame"] = {name: values.tolist() for name, values in per_frame.items()}
    if accel_err:
        entry.setdefault("per_frame", {}).update(accel_error_mm=[float(v) for v in accel_err],
                                                 accel_truth_mm=[float(v) for v in accel_true])
    entry.update(summarise(entry.get("per_frame", {})))
    return entry


def summarise(per_frame: dict) -> dict:
    """Means (and medians of the 3D errors) of per-frame values: {"mpjpe_mm": [...], ...} -> numbers."""
    out = {}
    for name, values in per_frame.items():
        out[name] = float(np.mean(values))
        if not name.startswith("accel"):
            out[name.replace("_mm", "_median_mm")] = float(np.median(values))
    return out


def total(entries: list) -> dict:
    """All clips together: sums of counts, means and medians over all their frames."""
    out = {k: sum(e[k] for e in entries) for k in ("frames", "hands", "tracks", "frames_visible", "frames_lost",
                                                    "id_switches", "extra_tracks")}
    out["tracks_per_hand"] = float(np.mean([n for e in entries for n in e["tracks_per_hand"]]))
    names = {name for e in entries for name in e.get("per_frame", {})}
    out.update(summarise({name: [v for e in entries for v in e.get("per_frame", {}).get(name, [])] for name in names}))
    return out


def evaluate_videos(folder: str, device: str = "auto", weights: str = None, smoothing: float = None) -> dict:
    """Run the engine on every clip of ``folder`` and score it; returns {"clips": [...], "total": {...}}.
    ``smoothing`` overrides ``handcap estimate --smoothing`` (0: per-frame results)."""
    from blender_addon.capture_format import load_capture
    from core.engine.pipeline import EngineOptions
    from core.engine.progress import Progress
    from core.engine.run import Estimator, VideoOptions

    clips = sorted(glob.glob(os.path.join(folder, "clip_*.mp4")))
    if not clips:
        raise FileNotFoundError(f"{folder}: no clip_*.mp4 (make some with python -m training.synth --video {folder})")
    entries = []
    with tempfile.TemporaryDirectory(prefix="handcap_video_eval_") as out:
        video = VideoOptions() if smoothing is None else VideoOptions(smoothing=smoothing)
        estimator = Estimator(EngineOptions(device=device, weights=weights), video, out, progress=Progress())
        try:
            for path in clips:
                stem = os.path.splitext(path)[0]
                truth = dict(np.load(stem + "_truth.npz"))
                start = time.perf_counter()
                capture = estimator.estimate_file(path, os.path.join(out, os.path.basename(stem) + ".npz"))
                seconds = time.perf_counter() - start
                tracks = load_capture(capture).tracks if capture else []
                entry = {"clip": os.path.basename(path), **score_clip(truth, tracks)}
                entry["frames_per_s"] = entry["frames"] / seconds
                entries.append(entry)
        finally:
            estimator.close()
    return {"folder": os.path.abspath(folder), "smoothing": video.smoothing, "clips": entries, "total": total(entries)}


COLUMNS = [("clip", "clip", "{}"), ("hands", "hands", "{}"), ("tracks", "tracks", "{}"),
           ("lost", "frames_lost", "{}"), ("visible", "frames_visible", "{}"), ("id sw", "id_switches", "{}"),
           ("MPJPE", "mpjpe_mm", "{:.1f}"), ("med", "mpjpe_median_mm", "{:.1f}"), ("RR", "rr_mpjpe_mm", "{:.1f}"),
           ("PA", "pa_mpjpe_mm", "{:.1f}"), ("PA med", "pa_mpjpe_median_mm", "{:.1f}"),
           ("accel err", "accel_error_mm", "{:.2f}"), ("accel GT", "accel_truth_mm", "{:.2f}"),
           ("fps", "frames_per_s", "{:.1f}")]


def table(result: dict) -> str:
    """A text table: one row per clip and a total (errors in mm, acceleration in mm/frame^2)."""
    rows = [[title for title, _, _ in COLUMNS]]
    for entry in result["clips"] + [{"clip": "all", **result["total"]}]:
        rows.append([fmt.format(entry[key]) if key in entry else "-" for _, key, fmt in COLUMNS])
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows)

