"""``handcap estimate``: photos, folders and videos -> capture files (+ overlays), file by file.

Each input is read and checked first (unreadable, empty, unsupported, too large -> one clear
error line, and the next file goes on); outputs are written to temporary files and renamed, so a
failure leaves nothing half-written. Progress goes to stderr as a bar, or with ``--progress json``
as one JSON object per stdout line: {"stage", "done", "total", "message"}; the last line is
{"stage": "done", "outputs": [...], "failed": n}. A file that fails gives {"stage": "error", ...}.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import tempfile
import time
from typing import Iterator, Optional

import cv2
import numpy as np
import torch

from core.capture import Capture, default_intrinsics, save_capture, track_from_layer
from core.hand_model import HandLayer, load_hand_model

from .pipeline import Engine, EngineOptions, HandEstimate
from .read_ahead import ReadAhead
from .tracking import Tracker, smooth, smooth_rotations
from . import overlay as draw

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")
MAX_PIXELS = 250_000_000           # larger images are refused (decoding alone would need GBs)
FRAME_CHUNK = 32                   # video frames whose hands go through the network and the fit together
CHUNK_PIXELS = 32 * 1920 * 1080    # ... fewer for large frames (a chunk of 4K frames is 8)
MAX_BAD_FRAMES = 25                # consecutive undecodable frames that end a video


class InputError(ValueError):
    """This input cannot be processed; the message names the file and says why."""


@dataclasses.dataclass
class VideoOptions:
    smoothing: float = 0.5           # 0 = none, 1 = strongest
    frame_start: int = 0             # source frames, 0-based
    frame_end: int = -1              # inclusive; -1 = to the end
    frame_step: int = 1


# ------------------------------------------------------------------------------------ inputs

def chunk_size(width: int, height: int) -> int:
    """Video frames estimated together: FRAME_CHUNK, fewer where that many frames of this size would
    exceed CHUNK_PIXELS. The fit's cost per step hardly depends on how many hands it holds, so
    larger chunks make it cheaper per frame (the results do not depend on the chunk size)."""
    return max(1, min(FRAME_CHUNK, CHUNK_PIXELS // max(1, width * height)))


@contextlib.contextmanager
def torch_threads(count: int):
    """torch's intra-op CPU threads set to ``count`` inside the block, restored after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def expand_inputs(inputs: list[str]) -> list[str]:
    """Files as given, folders as their image and video files (sorted, not recursive). Other files in
    folders are skipped silently; a missing path is kept so that it fails with a clear error."""
    files = []
    for path in inputs:
        if os.path.isdir(path):
            names = sorted(n for n in os.listdir(path) if n.lower().endswith(IMAGE_EXTENSIONS + VIDEO_EXTENSIONS))
            files += [os.path.join(path, n) for n in names]
        else:
            files.append(path)
    return files


def check_file(path: str) -> str:
    """'image' | 'video' for a readable, non-empty file of a supported kind; InputError otherwise."""
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    if not os.path.isfile(path):
        raise InputError(f"{path}: not a file")
    if os.path.getsize(path) == 0:
        raise InputError(f"{path}: empty file (0 bytes)")
    extension = os.path.splitext(path)[1].lower()
    if extension in IMAGE_EXTENSIONS:
        return "image"
    if extension in VIDEO_EXTENSIONS:
        return "video"
    raise InputError(f"{path}: unsupported format {extension or '(no extension)'}; photos "
                     f"{' '.join(IMAGE_EXTENSIONS)}, videos {' '.join(VIDEO_EXTENSIONS)}")


def to_rgb8(image: np.ndarray, path: str) -> np.ndarray:
    """Any image OpenCV decodes (gray, gray+alpha, BGR, BGRA; 8/16-bit or float) -> (H, W, 3) uint8 RGB."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype.kind == "f":
        image = (np.clip(image, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise InputError(f"{path}: unsupported pixel type {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    channels = image.shape[2]
    if channels in (1, 2):                                  # gray, or gray + alpha
        return cv2.cvtColor(image[..., 0], cv2.COLOR_GRAY2RGB)
    if channels == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_image(path: str) -> np.ndarray:
    """A photo file -> (H, W, 3) uint8 RGB, or InputError with the reason."""
    with open(path, "rb") as f:
        data = np.frombuffer(f.read(), np.uint8)
    header = cv2.imdecode(data, cv2.IMREAD_REDUCED_GRAYSCALE_8)   # cheap size check before the full decode
    if header is None:
        raise InputError(f"{path}: not a readable image (corrupt or not an image)")
    if header.size * 64 > MAX_PIXELS:
        raise InputError(f"{path}: image too large (about {header.shape[1] * 8} x {header.shape[0] * 8} pixels; "
                         f"at most {MAX_PIXELS // 1_000_000} megapixels)")
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise InputError(f"{path}: not a readable image (corrupt or not an image)")
    return to_rgb8(image, path)


def intrinsics(width: int, height: int, focal: Optional[float] = None, K_file: Optional[str] = None) -> np.ndarray:
    """(3, 3) K: from a .npy/.txt file (3x3), else from --focal (pixels, principal point at the
    centre), else the documented default (50 degrees across the longer side)."""
    if K_file:
        try:
            K = np.load(K_file) if K_file.endswith(".npy") else np.loadtxt(K_file)
        except (OSError, ValueError) as e:
            raise InputError(f"{K_file}: cannot read intrinsics ({e})") from None
        if np.shape(K) != (3, 3):
            raise InputError(f"{K_file}: intrinsics must be a 3x3 matrix, got shape {np.shape(K)}")
        return np.asarray(K, np.float32)
    if focal:
        return np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]], np.float32)
    return default_intrinsics(width, height)


def output_path(out_dir: str, source: str, suffix: str, taken: set) -> str:
    """OUT/<stem><suffix>, made unique among the outputs of this run."""
    stem = os.path.splitext(os.path.basename(source))[0]
    path, n = os.path.join(out_dir, stem + suffix), 1
    while path in taken:
        n += 1
        path = os.path.join(out_dir, f"{stem}_{n}{suffix}")
    taken.add(path)
    return path


# ----------------------------------------------------------------------------------- progress

class Progress:
    """Progress for people (a line per step on stderr) or for the add-on (JSON lines on stdout)."""

    def __init__(self, mode: str = "text"):
        self.json = mode == "json"
        self._last = 0.0
        self._open = False          # a text progress line is waiting for its end of line

    def update(self, stage: str, done: int, total: int, message: str = "", force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < 0.25 and done < total:
            return
        self._last = now
        if self.json:
            print(json.dumps({"stage": stage, "done": done, "total": total, "message": message}), flush=True)
        else:
            print(f"\r{stage}: {done}/{total} {message}"[:200].ljust(60), end="" if done < total else "\n",
                  file=sys.stderr, flush=True)
            self._open = done < total

    def _end_line(self) -> None:
        """End an open progress line, so that the next message starts a line of its own."""
        if self._open:
            print(file=sys.stderr, flush=True)
            self._open = False

    def error(self, message: str) -> None:
        if self.json:
            print(json.dumps({"stage": "error", "done": 0, "total": 0, "message": message}), flush=True)
        self._end_line()
        print(f"handcap estimate: error: {message}", file=sys.stderr, flush=True)

    def finish(self, outputs: list[str], failed: int, message: str) -> None:
        if self.json:
            print(json.dumps({"stage": "done", "outputs": outputs, "failed": failed, "message": message}), flush=True)
        else:
            self._end_line()
            print(message, file=sys.stderr)


# ----------------------------------------------------------------------------------- tracks

class TrackBuilder:
    """HandEstimates of one camera -> capture-file HandTracks (shared shape, smoothing, gaps invalid)."""

    def __init__(self, hand_model: str, device: torch.device):
        self.layers = {side: HandLayer(load_hand_model(hand_model, side)).to(device) for side in ("right", "left")}
        self.device = device

    def wrist_offset(self, side: str, betas: np.ndarray) -> np.ndarray:
        """(N, B) betas -> (N, 3) rest position of the wrist (transl + this = the wrist)."""
        with torch.no_grad():
            out = self.layers[side](torch.as_tensor(betas, dtype=torch.float32, device=self.device))
        return out.rest_joints[:, 0].cpu().numpy()

    def build(self, side: str, frames: list[int], hands: list[Optional[HandEstimate]], K: np.ndarray,
              fps: float, smoothing: float):
        """frames: source frame numbers; hands: the estimate per frame or None (not seen)."""
        seen = np.array([h is not None for h in hands])
        index = np.arange(len(hands))
        nearest = np.array([index[seen][np.abs(index[seen] - i).argmin()] for i in index])   # fill gaps (invalid)
        pose = np.stack([hands[j].pose for j in nearest])
        betas_each = np.stack([hands[j].betas for j in nearest])
        betas = np.median(betas_each[seen], axis=0)
        wrist = np.stack([hands[j].transl for j in nearest]) + self.wrist_offset(side, betas_each)
        if fps > 0 and smoothing > 0:
            pose = smooth_rotations(pose, fps, smoothing)
            wrist = smooth(wrist, fps, smoothing)
        transl = wrist - self.wrist_offset(side, betas[None])[0]
        confidence = np.array([hands[j].score for j in nearest], np.float32) * seen
        return track_from_layer(self.layers[side], betas, pose, transl, K, frame_index=np.asarray(frames),
                                confidence=confidence, valid=seen)

    def vertices(self, track) -> np.ndarray:
        """(N, V, 3) camera-space mesh of a track over its frames."""
        with torch.no_grad():
            out = self.layers[track.side](torch.as_tensor(track.betas, device=self.device).expand(len(track.pose), -1),
                                          torch.as_tensor(track.pose, device=self.device),
                                          torch.as_tensor(track.transl, device=self.device))
        return out.vertices.cpu().numpy()


# ------------------------------------------------------------------------------------ runner

class Estimator:
    """Runs the engine over files. One Engine (network, hand model) serves all photos; videos get
    their own detector in tracking mode."""

    def __init__(self, options: EngineOptions, video: VideoOptions, out_dir: str, overlay: bool = False,
                 focal: Optional[float] = None, K_file: Optional[str] = None, progress: Progress = None):
        self.options, self.video, self.out_dir, self.overlay = options, video, out_dir, overlay
        self.focal = focal
        self.K_fixed = intrinsics(1, 1, K_file=K_file) if K_file else None   # a bad file fails here, once
        self.progress = progress or Progress()
        self.engine = Engine(options)
        self.builder = TrackBuilder(self.engine.network.config.hand_model, self.engine.device)
        self.taken: set = set()

    def close(self) -> None:
        self.engine.close()

    def run(self, inputs: list[str]) -> tuple[list[str], int]:
        """Process every input; returns (capture files written, number of inputs that failed)."""
        os.makedirs(self.out_dir, exist_ok=True)
        files = expand_inputs(inputs)
        outputs, failed = [], 0
        for i, path in enumerate(files):
            self.progress.update("file", i, len(files), os.path.basename(path), force=True)
            try:
                kind = check_file(path)
                outputs.append(self.photo(path) if kind == "image" else self.movie(path))
            except InputError as e:
                failed += 1
                self.progress.error(str(e))
        if not files:
            failed += 1
            self.progress.error("no photos or videos in the inputs given")
        return outputs, failed

    def _K(self, width: int, height: int) -> np.ndarray:
        return self.K_fixed if self.K_fixed is not None else intrinsics(width, height, self.focal)

    def photo(self, path: str) -> str:
        rgb = read_image(path)
        height, width = rgb.shape[:2]
        K = self._K(width, height)
        self.progress.update("estimate", 0, 1, os.path.basename(path), force=True)
        hands = self.engine.estimate_frames([rgb], K)[0]
        tracks = [self.builder.build(h.side, [0], [h], K, 0.0, 0.0) for h in hands]
        capture_path = self._save(path, tracks, K, width, height, 0.0)
        if self.overlay:
            bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
            image = draw.draw_tracks(bgr, tracks, [self.builder.vertices(t) for t in tracks], K, [0] * len(tracks))
            overlay_path = output_path(self.out_dir, path, "_overlay.png", self.taken)
            write_image(overlay_path, image)
        found = ", ".join(f"{h.side} ({h.source} {h.score:.2f})" for h in hands) or "no hand found"
        self.progress.update("estimate", 1, 1, f"{os.path.basename(path)}: {found}", force=True)
        return capture_path

    def movie(self, path: str) -> str:
        video = cv2.VideoCapture(path)
        if not video.isOpened():
            raise InputError(f"{path}: not a readable video (corrupt or unsupported codec)")
        try:
            return self._movie(path, video)
        finally:
            video.release()

    def _movie(self, path: str, video) -> str:
        fps = video.get(cv2.CAP_PROP_FPS) or 30.0
        count = int(video.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        v = self.video
        last = count - 1 if v.frame_end < 0 else min(v.frame_end, count - 1) if count else v.frame_end
        total = len(range(v.frame_start, last + 1, max(1, v.frame_step))) if count else 0
        detector = self.engine.video_detector() if v.frame_step == 1 else None   # tracks landmarks between frames
        tracker, frames_done, K = Tracker(), [], None
        chunk = []
        detected = ((index, rgb, self.engine.detect(rgb, detector)) for index, rgb in self._frames(video, count))
        try:
            with ReadAhead(detected, depth=2 * FRAME_CHUNK) as ahead, torch_threads(self._video_threads()):
                for item in ahead:
                    if K is None:
                        height, width = item[1].shape[:2]
                        K = self._K(width, height)
                    chunk.append(item)
                    if len(chunk) == chunk_size(width, height):
                        self._video_chunk(tracker, chunk, K, frames_done)
                        chunk = []
                        self.progress.update("video", len(frames_done), total, os.path.basename(path))
                if chunk:
                    self._video_chunk(tracker, chunk, K, frames_done)
        finally:
            if detector is not None:
                detector.close()
        if not frames_done:
            raise InputError(f"{path}: no frame could be decoded")
        self.progress.update("video", len(frames_done), len(frames_done), os.path.basename(path), force=True)
        tracks = []
        with self.engine.times("smooth"):
            for t in tracker.tracks:
                seen = sorted(t.frames)
                span = [f for f in frames_done if seen[0] <= f <= seen[-1]]
                tracks.append(self.builder.build(t.side, span, [t.frames.get(f) for f in span], K,
                                                 fps / max(1, v.frame_step), v.smoothing))
        with self.engine.times("write"):
            capture_path = self._save(path, tracks, K, width, height, fps / max(1, v.frame_step))
        if self.overlay:
            self._video_overlay(path, tracks, K, frames_done, fps / max(1, v.frame_step))
        return capture_path

    def _video_threads(self) -> int:
        """torch's CPU threads while a video runs: --threads, else one core fewer than torch's default,
        left to the read-ahead thread's decoding and MediaPipe (measured faster end to end)."""
        if self.options.threads or self.engine.device.type != "cpu":
            return self.options.threads or torch.get_num_threads()
        return max(1, torch.get_num_threads() - 1)

    def _frames(self, video, count: int) -> Iterator[tuple[int, np.ndarray]]:
        """(frame index, (H, W, 3) uint8 RGB) for the frames the VideoOptions ask for; an undecodable
        frame inside the video is skipped (up to MAX_BAD_FRAMES in a row)."""
        v, bad, index = self.video, 0, -1
        while True:
            with self.engine.times("decode"):
                ok, bgr = video.read()
            index += 1
            if not ok:
                if count and index < count and bad < MAX_BAD_FRAMES:
                    bad += 1
                    continue
                return
            bad = 0
            if index < v.frame_start or (index - v.frame_start) % max(1, v.frame_step):
                continue
            if v.frame_end >= 0 and index > v.frame_end:
                return
            with self.engine.times("decode"):
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            yield index, rgb

    def _video_chunk(self, tracker, chunk, K, frames_done) -> None:
        """Network and fit for a chunk of (index, rgb, detections) frames; the tracker links the hands."""
        frames = [rgb for _, rgb, _ in chunk]
        results = self.engine.estimate_frames(frames, K, [found for _, _, found in chunk])
        for (index, _, _), hands in zip(chunk, results):
            tracker.update(index, hands)
            frames_done.append(index)

    def _video_overlay(self, path: str, tracks, K, frames_done: list[int], fps: float) -> None:
        """Re-read the processed frames and write OUT/<stem>_overlay.mp4 (mp4v)."""
        vertices = [self.builder.vertices(t) for t in tracks]
        rows = [{int(f): r for r, f in enumerate(t.frame_index)} for t in tracks]
        final = output_path(self.out_dir, path, "_overlay.mp4", self.taken)
        tmp = final + ".tmp.mp4"
        video, writer, wanted, index = cv2.VideoCapture(path), None, set(frames_done), -1
        try:
            while True:
                ok, bgr = video.read()
                index += 1
                if not ok:
                    if index <= max(frames_done):
                        continue
                    break
                if index not in wanted:
                    continue
                if writer is None:
                    writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), fps, (bgr.shape[1], bgr.shape[0]))
                writer.write(draw.draw_tracks(bgr, tracks, vertices, K, [r.get(index) for r in rows]))
        finally:
            video.release()
            if writer is not None:
                writer.release()
        if os.path.exists(tmp):
            os.replace(tmp, final)

    def _save(self, source: str, tracks, K, width: int, height: int, fps: float) -> str:
        capture = Capture(hand_model=self.builder.layers["right"].model.name, source_path=os.path.abspath(source),
                          image_size=np.array([width, height]), K=K, fps=fps, tracks=tracks)
        path = output_path(self.out_dir, source, ".npz", self.taken)
        save_capture(capture, path)
        return path


def write_image(path: str, bgr: np.ndarray) -> None:
    """PNG/JPEG written to a temporary file in the same folder, then renamed."""
    extension = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(suffix=extension, dir=os.path.dirname(os.path.abspath(path)))
    os.close(fd)
    try:
        if not cv2.imwrite(tmp, bgr):
            raise InputError(f"{path}: cannot write the image")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
