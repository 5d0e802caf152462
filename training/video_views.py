"""Look at a video's capture over time: a strip of overlay frames per capture, and one keypoint's
trajectory (camera space, x, y and depth) for every track, beside the truth when there is one.

    python -m training.video_views CLIP.mp4 PER_FRAME.npz SOLVED.npz --labels "per frame" solved \\
        [--truth CLIP_truth.npz] [--keypoint 8] [--frames 10 20 30 40] --out views.png

Make the captures with ``handcap estimate CLIP.mp4 --smoothing 0`` (per-frame results) and with the
defaults. Jitter shows in the trajectory as a ragged line, a lost hand as a break, an identity
switch as a line that jumps to the other hand's; frames a capture flags as interpolated (filled
across a gap) are drawn as open circles. Each strip row is one capture: its meshes and keypoints
drawn on the clip's frames.
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

from blender_addon.capture_format import CaptureError, load_capture
from blender_addon.output_files import write_bytes
from core.engine.overlay import draw_tracks
from core.hand_model import HandLayer, load_hand_model

from .plots import figure_png

KEYPOINT_NAMES = {0: "wrist", 4: "thumb tip", 8: "index tip", 12: "middle tip", 16: "ring tip", 20: "pinky tip"}
AXES = ("x (mm, right)", "y (mm, down)", "depth (mm)")
TILE_WIDTH = 320                   # pixels of one strip frame


def read_frames(path: str, wanted: set) -> dict:
    """{source frame number: (H, W, 3) BGR} for the ``wanted`` frames of a video."""
    video, frames, index = cv2.VideoCapture(path), {}, -1
    if not video.isOpened():
        raise ValueError(f"{path}: not a readable video")
    try:
        while len(frames) < len(wanted):
            ok, bgr = video.read()
            index += 1
            if not ok:
                break
            if index in wanted:
                frames[index] = bgr
    finally:
        video.release()
    return frames


def track_vertices(capture) -> list[np.ndarray]:
    """(N, V, 3) camera-space mesh of every track of a capture, through the open hand layer."""
    out = []
    for track in capture.tracks:
        layer = HandLayer(load_hand_model(capture.hand_model, track.side), torch.float32)
        with torch.no_grad():
            posed = layer(torch.as_tensor(track.betas).expand(track.num_frames, -1), torch.as_tensor(track.pose),
                          torch.as_tensor(track.transl))
        out.append(posed.vertices.numpy())
    return out


def strip_rows(video: str, captures: list, frames: list[int]) -> list[np.ndarray]:
    """One (h, TILE_WIDTH * len(frames), 3) BGR strip per capture: its overlay on each of ``frames``."""
    pictures = read_frames(video, set(frames))
    rows = []
    for capture in captures:
        vertices = track_vertices(capture)
        index = [{int(f): r for r, f in enumerate(t.frame_index)} for t in capture.tracks]
        tiles = []
        for f in frames:
            if f not in pictures:
                raise ValueError(f"{video}: frame {f} could not be read")
            bgr = draw_tracks(pictures[f], capture.tracks, vertices, capture.K, [rows_.get(f) for rows_ in index])
            scale = TILE_WIDTH / bgr.shape[1]
            tile = cv2.resize(bgr, (TILE_WIDTH, round(bgr.shape[0] * scale)), interpolation=cv2.INTER_AREA)
            cv2.putText(tile, f"frame {f}", (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
            tiles.append(tile)
        rows.append(np.concatenate(tiles, 1))
    return rows


def views_png(video: str, captures: list, labels: list[str], truth, keypoint: int, frames: list[int]) -> bytes:
    """The strips (one per capture) above three trajectory plots (x, y, depth of ``keypoint``)."""
    strips = strip_rows(video, captures, frames)
    height = sum(s.shape[0] for s in strips) / 80 + 3.2
    figure = Figure(figsize=(strips[0].shape[1] / 80, height), dpi=80)
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(len(strips) + 1, 3, height_ratios=[s.shape[0] / 80 for s in strips] + [3.0])
    for r, (strip, label) in enumerate(zip(strips, labels)):
        ax = figure.add_subplot(grid[r, :])
        ax.imshow(cv2.cvtColor(strip, cv2.COLOR_BGR2RGB))
        ax.set_title(f"{label}: {len(captures[r].tracks)} track(s)", fontsize=9)
        ax.axis("off")
    name = KEYPOINT_NAMES.get(keypoint, f"keypoint {keypoint}")
    styles = ["-", "-", "-", "-"]
    colours = ["tab:red", "tab:blue", "tab:orange", "tab:purple"]
    for axis, title in enumerate(AXES):
        ax = figure.add_subplot(grid[-1, axis])
        if truth is not None:
            for h in range(truth["landmarks_3d"].shape[1]):
                seen = truth["visible"][:, h]
                values = np.where(seen, truth["landmarks_3d"][:, h, keypoint, axis] * 1000, np.nan)
                ax.plot(np.arange(len(values)), values, "--", color="green", linewidth=1.2,
                        label="truth" if h == 0 else None)
        for c, (capture, label) in enumerate(zip(captures, labels)):
            for t, track in enumerate(capture.tracks):
                values = np.where(track.valid, track.joints_3d[:, keypoint, axis] * 1000, np.nan)
                ax.plot(track.frame_index, values, styles[c % 4], color=colours[c % 4], linewidth=0.9, alpha=0.85,
                        label=label if t == 0 else None)
                filled = getattr(track, "interpolated", None)
                if filled is not None and np.any(filled):
                    ax.plot(track.frame_index[filled], values[filled], "o", mfc="none", color=colours[c % 4], ms=3)
        ax.set_title(f"{name}: {title}", fontsize=9)
        ax.set_xlabel("frame", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3)
        if axis == 0:
            ax.legend(fontsize=7)
    figure.tight_layout()
    return figure_png(figure)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.video_views", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", help="the clip the captures were made from")
    parser.add_argument("captures", nargs="+", help="capture files (.npz) of that clip, one strip row each")
    parser.add_argument("--labels", nargs="+", help="a name per capture (default: the file names)")
    parser.add_argument("--truth", help="the clip's _truth.npz from python -m training.synth --video, drawn green")
    parser.add_argument("--keypoint", type=int, default=8, help="which of the 21 keypoints to plot (default: 8, index tip)")
    parser.add_argument("--frames", type=int, nargs="+", help="source frames in the strip (default: 5 spread over the clip)")
    parser.add_argument("--out", required=True, help="PNG to write")
    args = parser.parse_args(argv)
    labels = args.labels or [os.path.basename(c) for c in args.captures]
    if len(labels) != len(args.captures):
        parser.error("give one --labels name per capture")
    if not 0 <= args.keypoint < 21:
        parser.error("--keypoint must be 0..20")
    try:
        captures = [load_capture(path) for path in args.captures]
        truth = dict(np.load(args.truth)) if args.truth else None
    except (OSError, CaptureError, ValueError) as e:
        parser.error(str(e))
    done = sorted({int(f) for c in captures for t in c.tracks for f in t.frame_index})
    if not done:
        parser.error("the captures hold no tracks")
    frames = args.frames or [done[round(i)] for i in np.linspace(0, len(done) - 1, 5)]
    try:
        png = views_png(args.video, captures, labels, truth, args.keypoint, frames)
    except ValueError as e:
        parser.error(str(e))
    write_bytes(args.out, png)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
