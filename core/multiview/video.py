"""``handcap estimate --views`` with videos: several calibrated cameras filming the same hands.

View v's frame f + offsets[v] is taken at the same instant as the first view's frame f (``--offsets``,
frames; default 0). Each view is decoded and detected as a single-view video is (its own detector in
tracking mode: ``core.engine.run.detected_frames``); the frames all views have are taken together in
chunks: per view the single-view engine (network and fit, batched over the chunk's frames), then per
instant the matching and the multi-view fit (``core.multiview.estimate.fit_instants``, batched over
the chunk's instants). The hands, in the first camera's frame, are linked into tracks by their side
and their place in the views' pictures (``views_closeness``, core.engine.tracking), and
each track gets the single-view whole-track solve (one shape, smoothing, gaps:
``core.engine.run.TrackBuilder``). Not done here: the single-view video's chunk-chains step (sides
settled and hands looked back for along the detector's chains).
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Iterator

import cv2
import numpy as np

from core.engine.inputs import InputError, VideoOptions
from core.engine.run import check_size, detected_frames
from core.engine.track_links import link_tracks
from core.engine.tracking import Tracker

from .estimate import fit_instants

CHUNK = 16        # instants per chunk (V frames each)


def view_options(options: VideoOptions, offset: int) -> VideoOptions:
    """The frame range of a view whose frame f + offset goes with the first view's frame f."""
    end = options.frame_end + offset if options.frame_end >= 0 else -1
    return dataclasses.replace(options, frame_start=max(0, options.frame_start + offset),
                               frame_end=max(end, 0) if options.frame_end >= 0 else -1)


def synchronised(streams: list[Iterator], offsets: list[int]) -> Iterator[tuple[int, list]]:
    """Per-view iterators of (frame index, rgb, detections) -> (first view's frame f, [(rgb, detections)
    of each view at its frame f + offsets[v]]) for the instants every view has (a frame one view could
    not decode drops that instant)."""
    current = [next(s, None) for s in streams]
    while all(c is not None for c in current):
        instants = [c[0] - o for c, o in zip(current, offsets)]
        latest = max(instants)
        if min(instants) == latest:
            yield latest, [(c[1], c[2]) for c in current]
            current = [next(s, None) for s in streams]
        else:
            current = [next(s, None) if i < latest else c for s, c, i in zip(streams, current, instants)]


def views_closeness(cameras):
    """The tracker's match score of a hand for a track with several cameras: the track's last hand and
    the new one (joints in the first view's frame) projected into every view; in the view where they
    agree best, 1 - their mean distance in the new hand's box sides there (0 when a box side or more
    apart, or behind every camera). The best view, not the first: a hand that only one view sees has
    an unsure depth, along that view's rays, so its other views' projections wander; in the view that
    sees it, it stays put. (Two hands of one side would have to lie on one camera's ray to be confused.)"""
    def close(track, hand) -> float:
        last = np.asarray(track.frames[track.last_frame].joints_3d, np.float64)
        now = np.asarray(hand.joints_3d, np.float64)
        best = np.inf
        for camera in cameras:
            a, b = camera.to_view(last), camera.to_view(now)
            if np.any(a[:, 2] <= 1e-3) or np.any(b[:, 2] <= 1e-3):
                continue
            pa, pb = camera.project(last), camera.project(now)
            side = max(float(np.ptp(pb, axis=0).max()), 1.0)
            best = min(best, float(np.linalg.norm(pa - pb, axis=1).mean()) / side)
        return max(0.0, 1.0 - best) if np.isfinite(best) else 0.0
    return close


class ViewsVideo:
    """One multi-view video run: ``run(paths, cameras, offsets)`` -> (tracks, fps, the first view's size)."""

    def __init__(self, engine, builder, video: VideoOptions, progress):
        self.engine, self.builder, self.video, self.progress = engine, builder, video, progress

    def run(self, paths: list[str], cameras, offsets: list[int]):
        offsets = [o - offsets[0] for o in offsets]          # relative to the first view
        with contextlib.ExitStack() as stack:
            captures, streams, fps = [], [], None
            for path, offset in zip(paths, offsets):
                video = cv2.VideoCapture(path)
                stack.callback(video.release)
                if not video.isOpened():
                    raise InputError(f"{path}: not a readable video (corrupt or unsupported codec)")
                rate = video.get(cv2.CAP_PROP_FPS) or 30.0
                fps = fps or (rate if np.isfinite(rate) and 0 < rate <= 10_000 else 30.0)
                detector = self.engine.video_detector() if self.video.frame_step == 1 else None
                if detector is not None:
                    stack.callback(detector.close)
                count = max(0, int(video.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
                streams.append(detected_frames(self.engine, path, video, count, view_options(self.video, offset), detector))
                stack.callback(streams[-1].close)            # its decoding thread ends before the video is released
                captures.append(count)
            v = self.video                                  # instants to expect: the first view's range, when counted
            last = min(c - o for c, o in zip(captures, offsets)) - 1
            last = last if v.frame_end < 0 else min(last, v.frame_end)
            total = len(range(v.frame_start, last + 1, max(1, v.frame_step))) if all(captures) else 0
            tracker, frames_done, chunk, size = Tracker(views_closeness(cameras)), [], [], None
            for frame, views in synchronised(streams, offsets):
                if size is None:
                    for path, (rgb, _) in zip(paths, views):
                        check_size(path, rgb.shape[1], rgb.shape[0], "video frame")
                    size = (views[0][0].shape[1], views[0][0].shape[0])
                chunk.append((frame, views))
                if len(chunk) == CHUNK:
                    self._chunk(chunk, cameras, tracker, frames_done)
                    chunk = []
                    self.progress.update("video", len(frames_done), total, paths[0])
            if chunk:
                self._chunk(chunk, cameras, tracker, frames_done)
        if not frames_done:
            raise InputError(f"{paths[0]}: no instant that every view has could be decoded (check --offsets)")
        step = max(1, self.video.frame_step)
        tracks = []
        with self.engine.times("smooth"):
            for t in link_tracks(tracker.tracks):
                seen = sorted(t.frames)
                span = [f for f in frames_done if seen[0] <= f <= seen[-1]]
                tracks.append(self.builder.build(t.side, span, [t.frames.get(f) for f in span], cameras[0].K,
                                                 fps / step, self.video.smoothing, image_size=size))
        return tracks, fps / step, size

    def _chunk(self, chunk, cameras, tracker: Tracker, frames_done: list[int]) -> None:
        """Single-view engine per view over the chunk, then the multi-view fit of every instant."""
        per_view = []
        for v, camera in enumerate(cameras):
            frames = [views[v][0] for _, views in chunk]
            found = [views[v][1] for _, views in chunk]
            per_view.append((found, self.engine.estimate_frames(frames, np.asarray(camera.K, np.float64), found)))
        seen = [[(per_view[v][0][f], per_view[v][1][f]) for v in range(len(cameras))] for f in range(len(chunk))]
        widths = [rgb.shape[1] for rgb, _ in chunk[0][1]]
        for (frame, _), hands in zip(chunk, fit_instants(self.engine, seen, cameras, widths)):
            tracker.update(frame, hands)
            frames_done.append(frame)
