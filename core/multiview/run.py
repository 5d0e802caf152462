"""``handcap estimate --views V1 V2 ... --cameras CAMERAS.json -o OUT``: photos of one instant -> one capture.

The capture file is named after the first view (OUT/<first view's stem>.npz, as a single-view
estimate names it), holds the hands in the first view's camera frame, and lists every view's camera
under ``views/*`` (core.capture: K, R, t, image size, source path, frame offset 0 for photos). A
photo that is not at the size its camera entry gives (``image_size``) is used with its intrinsics
scaled when its aspect is the same, and refused otherwise. Progress and errors as for single-view
estimate (core.engine.progress). Videos: ``run_videos`` (core.multiview.video), view v's frames
offset by ``--offsets``; frame_offset in the capture holds them.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional

import cv2
import numpy as np

from core.capture import Capture, CaptureViews, project, save_capture
from core.engine.inputs import InputError, VideoOptions, capture_paths
from core.engine.pipeline import Engine, EngineOptions
from core.engine.progress import Progress
from core.engine.run import TrackBuilder, photo_overlay, read_image, scaled_intrinsics, write_image

from .cameras import ViewCamera
from .estimate import estimate_views
from .offsets import find_offsets
from .video import ViewsVideo

ASPECT_TOLERANCE = 0.01     # relative: a photo of another size but this aspect gets its intrinsics scaled


def views_overlay_path(capture_path: str, view: int) -> str:
    """View ``view``'s overlay beside a multi-view capture: <capture stem>_view<view>_overlay.png."""
    return f"{os.path.splitext(capture_path)[0]}_view{view}_overlay.png"


def view_intrinsics(path: str, camera: ViewCamera, width: int, height: int) -> np.ndarray:
    """(3, 3) K of a view's photo of full size width x height: the camera's, scaled when the cameras file
    gives another image size of the same aspect; InputError for another aspect."""
    K = np.asarray(camera.K, np.float64)
    if camera.image_size is None or tuple(camera.image_size) == (width, height):
        return K
    cw, ch = camera.image_size
    if abs((width / height) / (cw / ch) - 1.0) > ASPECT_TOLERANCE:
        raise InputError(f"{path}: the photo is {width} x {height} pixels, but its camera in the cameras file is "
                         f"{cw} x {ch} (another aspect: calibrate at this size)")
    return np.asarray(scaled_intrinsics(K, width / cw, height / ch), np.float64)


class ViewsEstimator:
    """One Engine; ``run(paths, cameras)`` estimates one instant seen by the views and writes its capture."""

    def __init__(self, options: EngineOptions, out_dir: str, progress: Optional[Progress] = None,
                 overlay: bool = False):
        self.out_dir, self.progress, self.overlay = out_dir, progress or Progress(), overlay
        self.engine = Engine(options)
        self.builder = TrackBuilder(self.engine.network.config.hand_model, self.engine.device)
        self.hands = 0

    def close(self) -> None:
        self.engine.close()

    def run(self, paths: list[str], cameras: list[ViewCamera]) -> str:
        """Photos (one per camera, in order) -> the capture file's path; InputError naming a bad view."""
        images, working, sizes, Ks = [], [], [], []
        for path, camera in zip(paths, cameras):
            rgb, (width, height) = read_image(path)
            K = view_intrinsics(path, camera, width, height)
            scale_x, scale_y = rgb.shape[1] / width, rgb.shape[0] / height       # 1 unless a large photo
            images.append(rgb)
            sizes.append((width, height))
            Ks.append(K)
            working.append(ViewCamera(np.asarray(scaled_intrinsics(K, scale_x, scale_y), np.float64),
                                      np.asarray(camera.R, np.float64), np.asarray(camera.t, np.float64),
                                      (rgb.shape[1], rgb.shape[0])))
        names = " + ".join(os.path.basename(p) for p in paths)
        self.progress.update("estimate", 0, len(paths), names, force=True)
        def views_done(done: int, total: int) -> None:
            self.progress.update("estimate", done, total, names, force=True)
        hands = estimate_views(self.engine, images, working, progress=views_done)
        # the capture describes the full-size first photo; its hands are in metres, whatever the pixels
        tracks = [self.builder.build(h.side, [0], [h], Ks[0], 0.0, 0.0, person=h.person) for h in hands]
        path = self._save(paths, cameras, tracks, Ks, sizes, 0.0, [0] * len(paths))
        if self.overlay:
            try:
                self._overlays(path, images, cameras, tracks, Ks, sizes)
            except BaseException:                # all or nothing: no capture without its overlays
                for leftover in [path] + [views_overlay_path(path, v) for v in range(len(paths))]:
                    if os.path.exists(leftover):
                        os.remove(leftover)
                raise
        found = ", ".join(f"{h.side} ({h.score:.2f})" for h in hands) or "no hand found"
        self.progress.update("estimate", len(paths), len(paths), f"{names}: {found}", force=True)
        return path

    def _overlays(self, capture_path: str, images, cameras, tracks, Ks, sizes) -> None:
        """OUT/<first view's stem>_view<v>_overlay.png for every view v: the hands (first view's frame)
        moved into view v's camera and drawn on its photo (pinhole: a lens's distortion is not drawn)."""
        vertices = [self.builder.vertices(t) for t in tracks]
        for v, (rgb, camera, K, (width, height)) in enumerate(zip(images, cameras, Ks, sizes)):
            R, t = np.asarray(camera.R, np.float64), np.asarray(camera.t, np.float64)
            seen = [dataclasses.replace(track, keypoints_2d=project(track.joints_3d @ R.T + t, K)) for track in tracks]
            image = photo_overlay(rgb, seen, [verts @ R.T + t for verts in vertices], K, width, height)
            write_image(views_overlay_path(capture_path, v), image)

    def find_offsets(self, paths: list[str], cameras: list[ViewCamera]) -> list[int]:
        """``--offsets auto``: each video's frame offset from the first, from the hands' motion
        (core.multiview.offsets); OffsetSearchError (an InputError) when the motion does not fix it."""
        def read(done, total):
            self.progress.update("offsets", done, total, "finding the views' frame offsets from the hands", force=True)
        offsets = find_offsets(self.engine, paths, self._video_cameras(paths, cameras)[0], progress=read)
        self.progress.update("offsets", len(paths), len(paths), f"offsets found: {' '.join(map(str, offsets))}",
                             force=True)
        return offsets

    def run_videos(self, paths: list[str], cameras: list[ViewCamera], offsets: list[int], video: VideoOptions) -> str:
        """Videos filmed together (view v's frame f + offsets[v] with the first view's frame f) -> the
        capture file's path (core.multiview.video); InputError naming a bad view."""
        working, Ks, sizes = self._video_cameras(paths, cameras)
        tracks, fps, _ = ViewsVideo(self.engine, self.builder, video, self.progress).run(paths, working, offsets)
        return self._save(paths, cameras, tracks, Ks, sizes, fps, offsets)

    @staticmethod
    def _video_cameras(paths: list[str], cameras: list[ViewCamera]):
        """The cameras with K in each video's own pixels, and those K (3, 3) and sizes (width, height)."""
        Ks, sizes = [], []
        for path, camera in zip(paths, cameras):
            capture = cv2.VideoCapture(path)
            try:
                if not capture.isOpened():
                    raise InputError(f"{path}: not a readable video (corrupt or unsupported codec)")
                size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
            finally:
                capture.release()
            Ks.append(view_intrinsics(path, camera, *size))
            sizes.append(size)
        return [dataclasses.replace(c, K=K, image_size=size) for c, K, size in zip(cameras, Ks, sizes)], Ks, sizes

    def _save(self, paths, cameras, tracks, Ks, sizes, fps: float, offsets) -> str:
        """The capture file OUT/<first view's stem>.npz with every view's camera under views/*."""
        views = CaptureViews(K=np.stack(Ks).astype(np.float32), R=np.stack([c.R for c in cameras]).astype(np.float32),
                             t=np.stack([c.t for c in cameras]).astype(np.float32),
                             image_size=np.array(sizes, np.int32),
                             source_path=np.array([os.path.abspath(p) for p in paths]),
                             frame_offset=np.asarray(offsets, np.int32))
        capture = Capture(hand_model=self.builder.layers["right"].model.name, source_path=os.path.abspath(paths[0]),
                          image_size=np.array(sizes[0]), K=np.asarray(Ks[0], np.float32), fps=fps, tracks=tracks,
                          views=views)
        path = capture_paths([paths[0]], self.out_dir)[0]
        os.makedirs(self.out_dir, exist_ok=True)
        save_capture(capture, path)
        self.hands = len(tracks)
        return path
