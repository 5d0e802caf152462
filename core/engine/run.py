"""``handcap estimate``: photos, folders and videos -> capture files (+ overlays), file by file.

Each input is read and checked first (unreadable, empty, unsupported, too large -> one clear
error line, and the next file goes on); outputs are written to temporary files and renamed, so a
failure leaves nothing half-written. Progress goes to stderr as a bar, or with ``--progress json``
as one JSON object per stdout line (``core.engine.progress``). Photos larger than WORK_MAX_SIDE are
decoded smaller, and overlays are at most OVERLAY_MAX_SIDE, so memory stays bounded.
"""

from __future__ import annotations

import contextlib
import io
import os
import traceback
import warnings
from typing import Iterator, Optional

import cv2
import numpy as np
import torch

from blender_addon.output_files import atomic_output
from core.boxes import clip_boxes
from core.capture import Capture, default_intrinsics, save_capture, track_from_layer
from core.hand_model import HandLayer, load_hand_model

from .chunk_chains import ChunkChains
from .inputs import (IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, InputError, VideoOptions, capture_paths,  # noqa: F401
                     check_file, expand_inputs, overlay_path, read_intrinsics_file)
from .detect_process import DetectionProcess
from .network import resolve_device
from .pipeline import Engine, EngineOptions, HandEstimate
from .progress import Progress
from .read_ahead import ReadAhead
from .temporal import solve_track
from .track_links import link_tracks
from .tracking import Tracker
from . import overlay as draw

MAX_PIXELS = 250_000_000           # larger images are refused (decoding alone would need GBs)
FRAME_CHUNK = 96                   # video frames whose hands go through the network and the fit together
OVERLAPPED_CHUNK = 32              # ... when detection runs in a child process (the fit overlaps it)
CHUNK_PIXELS = 32 * 1920 * 1080    # ... fewer for large frames (32 of 1080p, 8 of 4K)
READ_AHEAD = 64                    # video frames decoded and detected ahead of the network and the fit
DECODE_AHEAD = 8                   # video frames decoded ahead of detection
MAX_BAD_FRAMES = 25                # consecutive undecodable frames that end a video
MIN_SIDE = 16                      # smaller images and frames are refused (no hand to see)
WORK_MAX_SIDE = 4096               # larger photos are decoded at 1/2, 1/4 or 1/8 size (memory bounded)
OVERLAY_MAX_SIDE = 2048            # overlays are drawn and written at most this large
EDGE_MARGIN = 0.5                  # hand sizes from the picture's edges: a hand this far in did not just leave


# ------------------------------------------------------------------------------------ inputs

def inside_picture(box: np.ndarray, image_size: tuple[int, int]) -> bool:
    """Whether a (4,) x0, y0, x1, y1 pixel box lies at least EDGE_MARGIN of its size (its longer side)
    inside a picture of image_size (width, height) pixels: a hand there is not leaving the picture."""
    margin = EDGE_MARGIN * max(float(box[2] - box[0]), float(box[3] - box[1]))
    width, height = image_size
    return bool(box[0] >= margin and box[1] >= margin and box[2] <= width - margin and box[3] <= height - margin)


def chunk_size(width: int, height: int, frames: int = FRAME_CHUNK) -> int:
    """Video frames estimated together: ``frames``, fewer where that many frames of this size would
    exceed CHUNK_PIXELS. The results do not depend on the chunk size (the video benchmark's clips in
    chunks of 96 and of 32: the same scores to 1e-7 mm). Larger chunks make the network and the fit
    cheaper per frame (a batch's overhead is shared); with detection in a child process the fit of a
    chunk overlaps the detection of the next, and only the last chunk's fit is left after detection
    ends, so there smaller chunks (OVERLAPPED_CHUNK) end a clip sooner."""
    return max(1, min(frames, CHUNK_PIXELS // max(1, width * height)))


@contextlib.contextmanager
def torch_threads(count: int):
    """torch's intra-op CPU threads set to ``count`` inside the block, restored after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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


REDUCED_COLOR = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


def decode(data: np.ndarray, flags: int) -> Optional[np.ndarray]:
    """cv2.imdecode, None where it fails (it returns None for most broken files but raises for some)."""
    try:
        image = cv2.imdecode(data, flags)
    except cv2.error:
        return None
    return image if image is not None and image.size else None


def header_size(data: np.ndarray) -> Optional[tuple[int, int]]:
    """(width, height) of an encoded image from its header alone (Pillow reads no pixels), or None."""
    from PIL import Image
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")            # Pillow warns about large images; MAX_PIXELS is our limit
        try:
            with Image.open(io.BytesIO(data.tobytes())) as image:
                return tuple(int(v) for v in image.size)
        except Exception:                          # a format Pillow does not know, or a broken header
            return None


def read_image(path: str) -> tuple[np.ndarray, tuple[int, int]]:
    """A photo file -> (its pixels as (h, w, 3) uint8 RGB, its full (width, height)), or InputError.

    A photo whose longer side exceeds WORK_MAX_SIDE is decoded at 1/2, 1/4 or 1/8 of its size (JPEG
    decodes straight to the smaller size), so memory stays bounded: the engine works on the smaller
    picture with intrinsics scaled to it, and the capture file describes the full photo."""
    try:
        data = np.fromfile(path, np.uint8)
    except OSError as e:
        raise InputError(f"{path}: cannot read the file ({e.strerror or e})") from None
    header = decode(data, cv2.IMREAD_REDUCED_GRAYSCALE_8)   # cheap size check before the full decode
    if header is None and decode(data, cv2.IMREAD_UNCHANGED) is None:
        raise InputError(f"{path}: not a readable image (corrupt or not an image)")
    if header is not None and header.size * 64 > MAX_PIXELS:
        raise InputError(f"{path}: image too large (about {header.shape[1] * 8} x {header.shape[0] * 8} pixels; "
                         f"at most {MAX_PIXELS // 1_000_000} megapixels)")
    size = header_size(data) if header is not None and max(header.shape) * 8 > WORK_MAX_SIDE else None
    if size is None or max(size) <= WORK_MAX_SIDE:      # (no header: under 8 pixels on a side, reduced decoding fails)
        image = decode(data, cv2.IMREAD_UNCHANGED)
        if image is None or image.size == 0:
            raise InputError(f"{path}: not a readable image (corrupt or not an image)")
        rgb = to_rgb8(image, path)
        check_size(path, rgb.shape[1], rgb.shape[0])
        return rgb, (rgb.shape[1], rgb.shape[0])
    factor = next((f for f in (2, 4) if max(size) <= f * WORK_MAX_SIDE), 8)
    image = decode(data, REDUCED_COLOR[factor] | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None or image.size == 0:
        raise InputError(f"{path}: not a readable image (corrupt or not an image)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), size


def undecoded_warning(path: str, requested: range, used: list[int]) -> Optional[str]:
    """The one warning line for a video whose requested source frames were not all decoded (corrupt
    data, or the video ending early), with their count and the first one's source frame number, or
    None. Frames that were used keep their source numbers in the capture file."""
    missing = sorted(set(requested) - set(used))
    if not missing:
        return None
    return (f"{path}: {len(missing)} of {len(requested)} frames could not be decoded and were skipped "
            f"(the first: frame {missing[0]}; {len(used)} used)")


def check_size(path: str, width: int, height: int, what: str = "image") -> None:
    """InputError for an image or frame too small to hold a hand (MIN_SIDE)."""
    if min(width, height) < MIN_SIDE:
        raise InputError(f"{path}: {what} too small ({width} x {height} pixels; at least {MIN_SIDE} on each side)")


def scaled_intrinsics(K: np.ndarray, scale_x: float, scale_y: float) -> np.ndarray:
    """(3, 3) K of a picture resized by (scale_x, scale_y): the same camera, other pixels."""
    return (np.diag([scale_x, scale_y, 1.0]) @ np.asarray(K, np.float64)).astype(np.float32)


def overlay_scale(width: int, height: int) -> float:
    """Overlay pixels per image pixel: 1, or less so that the longer side is OVERLAY_MAX_SIDE."""
    return min(1.0, OVERLAY_MAX_SIDE / max(width, height))


def photo_overlay(rgb: np.ndarray, tracks, vertices: list[np.ndarray], K: np.ndarray, width: int, height: int) -> np.ndarray:
    """A photo's overlay (BGR, at most OVERLAY_MAX_SIDE pixels on its longer side): each track's first
    frame, its mesh ``vertices[t]`` (N, V, 3) camera space and keypoints, on the photo ``rgb`` (H, W, 3;
    possibly decoded smaller than its full size width x height, which K (3, 3) and the tracks' pixels
    belong to)."""
    scale = overlay_scale(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if (bgr.shape[1], bgr.shape[0]) != size:
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    return draw.draw_tracks(bgr, tracks, vertices, K, [0] * len(tracks), scale=(size[0] / width, size[1] / height))


SIDECAR_K = ("_K.npy", "_K.json")   # PHOTO_K.npy / PHOTO_K.json beside PHOTO.jpg: that photo's intrinsics


def sidecar_intrinsics(path: str) -> Optional[str]:
    """The intrinsics file shipped beside a photo or video (``<stem>_K.npy`` or ``<stem>_K.json``,
    3x3 pixels, as FreiHAND-style crops come), or None."""
    stem = os.path.splitext(path)[0]
    return next((stem + suffix for suffix in SIDECAR_K if os.path.isfile(stem + suffix)), None)


def intrinsics(width: int, height: int, focal: Optional[float] = None, K_file: Optional[str] = None) -> np.ndarray:
    """(3, 3) K: from a .npy/.json/.txt file (3x3), else from --focal (pixels, principal point at the
    centre), else the documented default (50 degrees across the longer side)."""
    if K_file:
        return read_intrinsics_file(K_file)
    if focal:
        return np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]], np.float32)
    return default_intrinsics(width, height)


def frame_boxes(boxes: tuple, path: str, width: int, height: int, scale_x: float = 1.0, scale_y: float = 1.0):
    """The user's (x0, y0, x1, y1) ``boxes`` clipped to a width x height image, in pixels of a picture
    scaled by (scale_x, scale_y); None without boxes (detection); InputError for a box outside the image."""
    if not boxes:
        return None
    try:
        boxes = clip_boxes(boxes, width, height)
    except ValueError as e:
        raise InputError(f"{path}: {e}") from None
    return tuple((x0 * scale_x, y0 * scale_y, x1 * scale_x, y1 * scale_y) for x0, y0, x1, y1 in boxes)


def video_frames(video, count: int, options: VideoOptions, times) -> Iterator[tuple[int, np.ndarray]]:
    """(frame index, (H, W, 3) uint8 RGB) for the frames ``options`` ask for of an opened
    cv2.VideoCapture with ``count`` frames (0: not known); an undecodable frame inside the video is
    skipped (up to MAX_BAD_FRAMES in a row). Decoding is timed in ``times`` (a StageTimes)."""
    bad, index = 0, -1
    while True:
        with times("decode"):
            ok, bgr = video.read()
        index += 1
        if not ok or bgr is None or bgr.size == 0:
            if count and index < count and bad < MAX_BAD_FRAMES:
                bad += 1
                continue
            return
        bad = 0
        if index < options.frame_start or (index - options.frame_start) % max(1, options.frame_step):
            continue
        if options.frame_end >= 0 and index > options.frame_end:
            return
        with times("decode"):
            rgb = to_rgb8(bgr, "frame") if bgr.ndim != 3 or bgr.shape[2] != 3 else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        yield index, rgb


def detected_frames(engine: Engine, path: str, video, count: int, options: VideoOptions,
                    detector) -> Iterator[tuple[int, np.ndarray, list]]:
    """(frame index, RGB frame, its Detections) of a video, in order: decoding runs in a thread of its
    own, DECODE_AHEAD frames ahead of detection by ``engine`` with ``detector`` (a video detector, or
    None: the engine's photo detector or the user's boxes). The work of ``handcap estimate`` before the
    network and the fit, run in this process or in a child one (``core.engine.detect_process``)."""
    boxes = None
    with ReadAhead(video_frames(video, count, options, engine.times), depth=DECODE_AHEAD) as decoded:
        for index, rgb in decoded:
            if engine.options.boxes and boxes is None:
                boxes = frame_boxes(engine.options.boxes, path, rgb.shape[1], rgb.shape[0])
            yield index, rgb, engine.detect(rgb, detector, boxes=boxes)


# ----------------------------------------------------------------------------------- tracks

class TrackBuilder:
    """HandEstimates of one camera -> capture-file HandTracks (one shape, whole-track temporal solve)."""

    def __init__(self, hand_model: str, device: torch.device):
        self.layers = {side: HandLayer(load_hand_model(hand_model, side)).to(device) for side in ("right", "left")}
        self.device = device

    def wrist_offset(self, side: str, betas: np.ndarray) -> np.ndarray:
        """(N, B) betas -> (N, 3) rest position of the wrist (transl + this = the wrist); the layer's
        keypoints-only path (rest joints are linear in betas: no mesh is skinned)."""
        with torch.no_grad():
            out = self.layers[side](torch.as_tensor(betas, dtype=torch.float32, device=self.device),
                                    keypoints_only=True)
        return out.rest_joints[:, 0].cpu().numpy()

    def build(self, side: str, frames: list[int], hands: list[Optional[HandEstimate]], K: np.ndarray,
              fps: float, smoothing: float, person: int = -1, image_size: Optional[tuple[int, int]] = None):
        """frames: source frame numbers; hands: the estimate per frame or None (not seen); person: the
        track's person (-1: not known). One shape (the median of the frames' betas); pose and wrist solved
        over the whole track (core.engine.temporal: ``smoothing`` 0 keeps the seen frames as estimated);
        short gaps filled (valid, flagged interpolated), long gaps invalid; image_size (width, height) pixels:
        longer gaps may be bridged only between frames where the hand is inside the picture (None: no check)."""
        seen = np.array([h is not None for h in hands])
        stand_in = next(h for h in hands if h is not None)        # unseen frames: any finite values (weight 0)
        pose = np.stack([(h or stand_in).pose for h in hands])
        betas_each = np.stack([(h or stand_in).betas for h in hands])
        betas = np.median(betas_each[seen], axis=0)
        wrist = np.stack([(h or stand_in).transl for h in hands]) + self.wrist_offset(side, betas_each)
        confidence = np.array([h.score if h is not None else 0.0 for h in hands], np.float32)
        inside = None if image_size is None else np.array([h is not None and inside_picture(h.box, image_size)
                                                           for h in hands])
        pose, wrist, interpolated = solve_track(pose, wrist, confidence, seen, fps, smoothing, inside)
        transl = wrist - self.wrist_offset(side, betas[None])[0]
        track = track_from_layer(self.layers[side], betas, pose, transl, K, frame_index=np.asarray(frames),
                                 confidence=confidence, valid=seen | interpolated)
        track.interpolated = interpolated
        track.person = int(person)
        return track

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
    their own detector in tracking mode. After ``run``: ``no_hand`` lists the inputs read fine but
    without a hand, ``hands`` the number of hands (tracks) in each capture file written, ``frames``
    the photos and video frames estimated (all runs). ``estimate_file`` is one input, for callers
    that hand out the inputs themselves (``core.scale_out``: one engine per Ray worker).
    detection_process: decode and detect videos in a child process (``core.engine.detect_process``);
    None: where the engine runs on a CPU with two cores or more."""

    def __init__(self, options: EngineOptions, video: VideoOptions, out_dir: str, overlay: bool = False,
                 focal: Optional[float] = None, K_file: Optional[str] = None, progress: Progress = None,
                 verbose: bool = False, detection_process: Optional[bool] = None):
        self.options, self.video, self.out_dir, self.overlay = options, video, out_dir, overlay
        self.focal, self.verbose = focal, verbose
        self.K_fixed = intrinsics(1, 1, K_file=K_file) if K_file else None   # a bad file fails here, once
        self.progress = progress or Progress()
        if detection_process is None:            # videos' detection in a child process: CPU, 2 cores or more
            detection_process = resolve_device(options.device).type == "cpu" and (os.cpu_count() or 1) >= 2
        # started first, so that the child loads its networks while this process loads its own
        self.detection_process = DetectionProcess(options) if detection_process else None
        try:
            self.engine = Engine(options)
            if self.detection_process is not None:
                self.detection_process.wait_ready()
        except BaseException:                    # bad weights, Ctrl-C: no child left behind
            if self.detection_process is not None:
                self.detection_process.close()
            raise
        self.builder = TrackBuilder(self.engine.network.config.hand_model, self.engine.device)
        self.taken: set = set()            # capture files named by this Estimator's runs (one is not overwritten)
        self.no_hand: list[str] = []
        self.hands: dict[str, int] = {}
        self.frames = 0                    # photos + video frames estimated
        self._capture = ""                 # the capture file of the input being processed
        self._written: list[str] = []      # files written for the input being processed

    def close(self) -> None:
        if self.detection_process is not None:
            self.detection_process.close()
        self.engine.close()

    def run(self, inputs: list[str]) -> tuple[list[str], int]:
        """Process every input; returns (capture files written, number of inputs that failed)."""
        os.makedirs(self.out_dir, exist_ok=True)
        files = expand_inputs(inputs)
        outputs, failed = [], 0
        for i, (path, capture) in enumerate(zip(files, capture_paths(files, self.out_dir, self.taken))):
            self.progress.update("file", i, len(files), os.path.basename(path), force=True)
            written = self.estimate_file(path, capture)
            if written:
                outputs.append(written)
            else:
                failed += 1
        if not files:
            failed += 1
            self.progress.error("no photos or videos in the inputs given")
        return outputs, failed

    def estimate_file(self, path: str, capture: str) -> Optional[str]:
        """One photo or video -> ``capture`` (its overlay beside it); the capture path, or None when
        the input failed (its error line went to the progress, and it left no file)."""
        self._written, self._capture = [], capture
        try:
            kind = check_file(path)
            return self.photo(path) if kind == "image" else self.movie(path)
        except InputError as e:
            self._forget(path)
            self.progress.error(str(e))
        except Exception as e:       # a library failing on this input: one line, and the others go on
            self._forget(path)
            self.progress.error(f"{path}: cannot be processed ({type(e).__name__}: {e})")
            if self.verbose:
                traceback.print_exc()
        except BaseException:        # Ctrl-C, SIGTERM: this input's finished files go too
            self._forget(path)
            raise
        return None

    def _forget(self, path: str) -> None:
        """An input failed after some of its files were written (say the capture, then not the
        overlay): remove them, so a failed input leaves nothing."""
        for written in self._written:
            with contextlib.suppress(OSError):
                os.unlink(written)
            self.hands.pop(written, None)
        self._written = []
        if path in self.no_hand:
            self.no_hand.remove(path)

    def _K(self, width: int, height: int, source: str) -> np.ndarray:
        """The intrinsics for one input: --K, else --focal, else the file beside it, else the default."""
        if self.K_fixed is not None:
            return self.K_fixed
        sidecar = None if self.focal else sidecar_intrinsics(source)
        return intrinsics(width, height, self.focal, K_file=sidecar)

    def _boxes(self, path: str, width: int, height: int, scale_x: float = 1.0, scale_y: float = 1.0):
        """The user's boxes for this input (``frame_boxes``)."""
        return frame_boxes(self.options.boxes, path, width, height, scale_x, scale_y)

    def photo(self, path: str) -> str:
        rgb, (width, height) = read_image(path)
        scale_x, scale_y = rgb.shape[1] / width, rgb.shape[0] / height      # 1 unless a large photo
        K = self._K(width, height, path)
        boxes = self._boxes(path, width, height, scale_x, scale_y)
        self.progress.update("estimate", 0, 1, os.path.basename(path), force=True)
        hands = self.engine.estimate_frames([rgb], scaled_intrinsics(K, scale_x, scale_y),
                                            [self.engine.detect(rgb, boxes=boxes)])[0]
        self.frames += 1
        tracks = [self.builder.build(h.side, [0], [h], K, 0.0, 0.0, person=h.person) for h in hands]
        capture_path = self._save(path, tracks, K, width, height, 0.0)
        if self.overlay:
            self._photo_overlay(path, rgb, tracks, K, width, height)
        if not hands:
            self.no_hand.append(path)
        found = ", ".join(f"{h.side} ({h.source} {h.score:.2f})" for h in hands) or "no hand found"
        self.progress.update("estimate", 1, 1, f"{os.path.basename(path)}: {found}", force=True)
        return capture_path

    def _photo_overlay(self, path: str, rgb: np.ndarray, tracks, K, width: int, height: int) -> None:
        """OUT/<stem>_overlay.png (``photo_overlay``)."""
        path = overlay_path(self._capture, "image")
        write_image(path, photo_overlay(rgb, tracks, [self.builder.vertices(t) for t in tracks], K, width, height))
        self._written.append(path)

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
        if not np.isfinite(fps) or fps <= 0 or fps > 10_000:
            fps = 30.0
        count = max(0, int(video.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
        v = self.video
        last = count - 1 if v.frame_end < 0 else min(v.frame_end, count - 1) if count else v.frame_end
        total = len(range(v.frame_start, last + 1, max(1, v.frame_step))) if count else 0
        detector = self.engine.video_detector() if v.frame_step == 1 else None   # tracks landmarks between frames
        tracker, frames_done, K = Tracker(), [], None
        chains = ChunkChains(detector.look) if detector is not None else None
        chunk, frames_per_chunk = [], OVERLAPPED_CHUNK if self.detection_process is not None else FRAME_CHUNK

        try:
            with ReadAhead(self._detected(path, video, count, detector), depth=READ_AHEAD) as ahead, \
                    torch_threads(self._video_threads()):
                for item in ahead:
                    if K is None:
                        height, width = item[1].shape[:2]
                        check_size(path, width, height, "video frame")
                        K = self._K(width, height, path)
                    elif item[1].shape[:2] != (height, width):
                        raise InputError(f"{path}: frame {item[0]} is {item[1].shape[1]} x {item[1].shape[0]}, "
                                         f"the first was {width} x {height}")
                    chunk.append(item)
                    if len(chunk) == chunk_size(width, height, frames_per_chunk):
                        self._video_chunk(tracker, chunk, K, frames_done, chains)
                        chunk = []
                        self.progress.update("video", len(frames_done), total, os.path.basename(path))
                if chunk:
                    self._video_chunk(tracker, chunk, K, frames_done, chains)
        finally:
            if detector is not None:
                detector.close()
        if not frames_done:
            raise InputError(f"{path}: no frame could be decoded")
        self.progress.update("video", len(frames_done), max(total, len(frames_done)), os.path.basename(path),
                             force=True)
        warning = undecoded_warning(path, range(v.frame_start, last + 1, max(1, v.frame_step)) if count else range(0),
                                    frames_done)
        if warning:
            self.progress.warning(warning)
        tracks = []
        with self.engine.times("smooth"), torch_threads(self._video_threads()):   # small ops: threads contend
            for t in link_tracks(tracker.tracks):
                seen = sorted(t.frames)
                span = [f for f in frames_done if seen[0] <= f <= seen[-1]]
                tracks.append(self.builder.build(t.side, span, [t.frames.get(f) for f in span], K,
                                                 fps / max(1, v.frame_step), v.smoothing, image_size=(width, height)))
        with self.engine.times("write"):
            capture_path = self._save(path, tracks, K, width, height, fps / max(1, v.frame_step))
        if self.overlay:
            self._video_overlay(path, tracks, K, frames_done, fps / max(1, v.frame_step))
        if not tracks:
            self.no_hand.append(path)
        return capture_path

    def _detected(self, path: str, video, count: int, detector):
        """(index, RGB frame, detections) of the video's frames: ``detected_frames`` in a child process
        on a CPU with two cores or more (``core.engine.detect_process``: the network and the fit of one
        chunk overlap the detection of the next without sharing the GIL), else in this process."""
        if self.detection_process is None:
            return detected_frames(self.engine, path, video, count, self.video, detector)
        return self.detection_process.frames(path, self.video, self.engine.times)

    def _video_threads(self) -> int:
        """torch's CPU threads while a video runs: --threads, else one core fewer than torch's default,
        left to the read-ahead thread's decoding and MediaPipe (measured faster end to end)."""
        if self.options.threads or self.engine.device.type != "cpu":
            return self.options.threads or torch.get_num_threads()
        return max(1, torch.get_num_threads() - 1)

    def _video_chunk(self, tracker, chunk, K, frames_done, chains: Optional[ChunkChains] = None) -> None:
        """Network and fit for a chunk of (index, rgb, detections) frames, the detections first settled
        by ``chains`` (sides, hands looked back for: core.engine.chunk_chains); the tracker links the hands."""
        frames = [rgb for _, rgb, _ in chunk]
        found = [found for _, _, found in chunk]
        if chains is not None:
            with self.engine.times("detect"):
                found = chains([index for index, _, _ in chunk], frames, found)
        results = self.engine.estimate_frames(frames, K, found)
        self.frames += len(frames)
        for (index, _, _), hands in zip(chunk, results):
            tracker.update(index, hands)
            frames_done.append(index)

    def _video_overlay(self, path: str, tracks, K, frames_done: list[int], fps: float) -> None:
        """Re-read the processed frames and write OUT/<stem>_overlay.mp4 (mp4v), at most
        OVERLAY_MAX_SIDE pixels on its longer side."""
        vertices = [self.builder.vertices(t) for t in tracks]
        rows = [{int(f): r for r, f in enumerate(t.frame_index)} for t in tracks]
        final = overlay_path(self._capture, "video")
        video, writer, wanted, index = cv2.VideoCapture(path), None, set(frames_done), -1
        try:
            with atomic_output(final, create=False) as tmp:
                while True:
                    ok, bgr = video.read()
                    index += 1
                    if not ok or bgr is None:
                        if index <= max(frames_done):
                            continue
                        break
                    if index not in wanted or bgr.ndim != 3 or bgr.shape[2] != 3:
                        continue
                    height, width = bgr.shape[:2]
                    scale = overlay_scale(width, height)
                    size = (max(1, round(width * scale)), max(1, round(height * scale)))
                    if writer is None:
                        writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
                    if scale < 1:
                        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
                    writer.write(draw.draw_tracks(bgr, tracks, vertices, K, [r.get(index) for r in rows],
                                                  scale=(size[0] / width, size[1] / height)))
                if writer is not None:
                    writer.release()
                    writer = None
            self._written.append(final)
        finally:
            video.release()
            if writer is not None:
                writer.release()

    def _save(self, source: str, tracks, K, width: int, height: int, fps: float) -> str:
        capture = Capture(hand_model=self.builder.layers["right"].model.name, source_path=os.path.abspath(source),
                          image_size=np.array([width, height]), K=K, fps=fps, tracks=tracks)
        path = self._capture or capture_paths([source], self.out_dir, self.taken)[0]
        save_capture(capture, path)
        self._written.append(path)
        self.hands[path] = len(tracks)
        return path


def write_image(path: str, bgr: np.ndarray) -> None:
    """PNG/JPEG written to a temporary file in the same folder, then renamed (usual permissions)."""
    with atomic_output(path, create=False) as tmp:
        if not cv2.imwrite(tmp, bgr):
            raise InputError(f"{path}: cannot write the image")
