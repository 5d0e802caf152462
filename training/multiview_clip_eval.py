"""Score ``handcap estimate --views`` on rendered multi-view clips against their exact truth (issue 31).

    python -m training.multiview_clip_eval --clips DIR [--json OUT.json] [--device D]

DIR holds clips from ``python -m training.synth.multiview --clip FRAMES --out DIR --views V
[--offset K]`` (clip_NNN/view*.mp4, cameras.json, truth.npz). Each clip's videos go through the
multi-view video path as a user's run does (``core.multiview.run.ViewsEstimator.run_videos``, default
video options) with the truth's frame offsets (``--offsets 0 -K``: view v's frame f - K goes with view
0's frame f) into one capture file, whose tracks are scored against the truth's hands.

Truth in the single-view scorer's terms (``clip_truth``): view 0's frames; a hand is *visible* at a
frame every view has (an instant the engine can see) when at least VISIBLE_FRACTION of its landmarks
lie inside the picture of at least one view (the renders have no occlusion truth: a hand hidden
behind the other one in every view still counts). Matching, identity switches, tracks per hand, frames
lost and the pooled MPJPEs are ``training.video_eval.score_clip``'s (pairing by 2D in view 0: the
tracks' keypoints_2d are their projection there, inside the picture or not). Added per true hand
(millimetres, view 0's camera space, landmark points) over its matched frames:
  mpjpe_mm, rr_mpjpe_mm   camera-space and root-relative (wrist at the origin) mean joint error
  view_px (V,)            the matched track's 3D landmarks projected into EVERY view (cameras.json)
                          against that view's 2D truth: mean pixel error per view
  view_swaps              matched frames where, in some view, the track's projection lies closer to
                          another true hand than to its own: a track that is one hand in one view
                          and the other hand in another (cross-view mismatch)
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tempfile
import time

import numpy as np

from blender_addon.output_files import write_bytes
from training import metrics
from training.synth.sequences import VISIBLE_FRACTION
from training.video_eval import match_tracks, score_clip, total


def clip_truth(truth: dict) -> dict:
    """A multi-view clip's truth.npz arrays -> score_clip's truth (view 0's frames, T = FRAMES + K rows):
    landmarks_2d (T, H, 21, 2) in view 0, landmarks_3d (T, H, 21, 3), visible (T, H) (see the module doc)."""
    offsets = np.asarray(truth["frame_offset"], int)                     # (V,) view v's frame t + offsets[v]
    rows = truth["landmarks_3d"].shape[0]
    frames = rows - int((-offsets).max())                                 # frames in every view's video
    t = np.arange(rows)
    instant = np.all([(t + o >= 0) & (t + o < frames) for o in offsets], axis=0)     # (T,) every view has it
    seen = (truth["in_frame"] >= VISIBLE_FRACTION).any(0)                 # (T, H) in some view's picture
    return {"landmarks_2d": truth["landmarks_2d"][0], "landmarks_3d": truth["landmarks_3d"],
            "visible": seen & instant[:, None]}


def view_consistency(truth: dict, tracks: list, cameras: list, rows: list, matched: np.ndarray) -> list[dict]:
    """Per true hand: mpjpe_mm, rr_mpjpe_mm, view_px (V,), view_swaps and frames (matched), from
    match_tracks' rows and matched (T, H); cameras: core.multiview.cameras.ViewCamera per view."""
    landmarks_2d = np.asarray(truth["landmarks_2d"], np.float64)          # (V, T, H, 21, 2)
    out = []
    for h in range(matched.shape[1]):
        frames = np.flatnonzero(matched[:, h] >= 0)
        entry = {"frames": int(len(frames)), "view_swaps": 0}
        if len(frames):
            pred = np.stack([tracks[matched[f, h]].joints_3d[rows[matched[f, h]][f]] for f in frames]).astype(np.float64)
            true = np.asarray(truth["landmarks_3d"], np.float64)[frames, h]
            entry["mpjpe_mm"] = float(1000 * metrics.point_errors(pred, true).mean())
            entry["rr_mpjpe_mm"] = float(1000 * metrics.point_errors(pred - pred[:, :1], true - true[:, :1]).mean())
            px = np.stack([np.linalg.norm(c.project(pred)[:, None] - landmarks_2d[v, frames], axis=-1).mean(-1)
                           for v, c in enumerate(cameras)])               # (V, N, H): to every true hand
            entry["view_px"] = [float(v) for v in px[:, :, h].mean(-1)]
            entry["view_swaps"] = int((px.argmin(-1) != h).any(0).sum())
        out.append(entry)
    return out


def score_multiview_clip(truth: dict, tracks: list, cameras: list) -> dict:
    """score_clip's metrics of one clip plus ``per_hand`` (view_consistency) and its view_swaps total."""
    single = clip_truth(truth)
    entry = score_clip(single, tracks)
    rows, matched = match_tracks(single, tracks)
    entry["per_hand"] = view_consistency(truth, tracks, cameras, rows, matched)
    entry["view_swaps"] = sum(h["view_swaps"] for h in entry["per_hand"])
    return entry


def evaluate_clips(folder: str, device: str = "auto", weights: str = None) -> dict:
    """Run the multi-view video estimate on every clip of ``folder`` and score it."""
    from blender_addon.capture_format import load_capture
    from core.engine.inputs import VideoOptions
    from core.engine.pipeline import EngineOptions
    from core.multiview.cameras import load_cameras
    from core.multiview.run import ViewsEstimator

    clips = sorted(d for d in glob.glob(os.path.join(folder, "clip_*")) if os.path.isfile(os.path.join(d, "truth.npz")))
    if not clips:
        raise FileNotFoundError(f"{folder}: no clip_*/truth.npz (make some with python -m training.synth.multiview --clip 24 --out {folder})")
    entries = []
    with tempfile.TemporaryDirectory(prefix="handcap_mv_clip_eval_") as out:
        estimator = ViewsEstimator(EngineOptions(device=device, weights=weights), out)
        try:
            for clip in clips:
                truth = dict(np.load(os.path.join(clip, "truth.npz")))
                paths = [os.path.join(clip, f"view{v}.mp4") for v in range(len(truth["frame_offset"]))]
                cameras = load_cameras(os.path.join(clip, "cameras.json"), views=len(paths))
                start = time.perf_counter()
                path = estimator.run_videos(paths, cameras, [int(o) for o in truth["frame_offset"]], VideoOptions())
                seconds = time.perf_counter() - start
                entry = {"clip": os.path.basename(clip), "sides": truth["sides"].tolist(),
                         **score_multiview_clip(truth, load_capture(path).tracks, cameras)}
                entry["instants_per_s"] = entry["frames"] / seconds
                entries.append(entry)
        finally:
            estimator.close()
    summary = total(entries)
    summary["view_swaps"] = sum(e["view_swaps"] for e in entries)
    return {"folder": os.path.abspath(folder), "clips": entries, "total": summary}


def table(result: dict) -> str:
    """One line per true hand: tracks, switches, lost, MPJPE, RR, px per view, view swaps."""
    lines = []
    for e in result["clips"]:
        lines.append(f"{e['clip']}: {e['hands']} hand(s) {e['sides']}, {e['tracks']} track(s), id switches "
                     f"{e['id_switches']}, lost {e['frames_lost']}/{e['frames_visible']}, extra tracks {e['extra_tracks']}")
        for h, (n, hand) in enumerate(zip(e["tracks_per_hand"], e["per_hand"])):
            px = " ".join(f"{v:.1f}" for v in hand.get("view_px", []))
            lines.append(f"  hand {h} ({e['sides'][h]}): tracks {n}, frames {hand['frames']}, MPJPE "
                         f"{hand.get('mpjpe_mm', float('nan')):.1f} mm, RR {hand.get('rr_mpjpe_mm', float('nan')):.1f} mm, "
                         f"px per view [{px}], view swaps {hand['view_swaps']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.multiview_clip_eval", description=__doc__.split("\n")[0])
    parser.add_argument("--clips", required=True, help="folder of clip_NNN/ from training.synth.multiview --clip")
    parser.add_argument("--json", help="write the full result (per-frame errors too) here")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--weights")
    args = parser.parse_args(argv)
    result = evaluate_clips(args.clips, args.device, args.weights)
    print(table(result))
    if args.json:
        write_bytes(args.json, (json.dumps(result, indent=1) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
