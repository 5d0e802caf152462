"""Which files a ``handcap estimate`` run reads and which it writes, decided before any model loads.

Torch-free, so that a driver that only hands inputs out (``core.scale_out``) stays light: the
supported extensions, folders expanded to their photos and videos, a first check of each file,
the capture file each input gets (planned once for the whole run) and its overlay, the video
frame range, and --K files.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Optional

import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")


class InputError(ValueError):
    """This input cannot be processed; the message names the file and says why."""


@dataclasses.dataclass
class VideoOptions:
    smoothing: float = 0.5           # 0 = per-frame results, 1 = strongest (core.engine.temporal)
    frame_start: int = 0             # source frames, 0-based
    frame_end: int = -1              # inclusive; -1 = to the end
    frame_step: int = 1


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


def split_inputs(inputs: list[str]) -> tuple[list[str], list[InputError]]:
    """The inputs (folders expanded) as (files that pass ``check_file``, the error of each that
    does not), in order. Cheap (no file is decoded), so that ``handcap estimate`` reports missing,
    empty and unsupported files before any model loads and only hands the others to the engine."""
    files, errors = [], []
    for path in expand_inputs(inputs):
        try:
            check_file(path)
            files.append(path)
        except InputError as e:
            errors.append(e)
    return files, errors


def check_live_source(source: str) -> bool:
    """Whether ``source`` (``handcap live``'s CAMERA|VIDEO) is a camera index; a video file must
    exist with a video extension (InputError otherwise). A whole number that is not an existing
    file is a camera index. No file is opened: this runs before any model loads."""
    if source.isdigit() and not os.path.exists(source):
        return True
    if not os.path.isfile(source):
        raise InputError(f"{source}: no such file (give a video file, or a camera index such as 0)")
    if not source.lower().endswith(VIDEO_EXTENSIONS):
        raise InputError(f"{source}: not a video file ({' '.join(VIDEO_EXTENSIONS)})")
    return False


def read_intrinsics_file(K_file: str) -> np.ndarray:
    """(3, 3) float32 K in pixels from a .npy, .json or text file; InputError naming the file otherwise."""
    try:
        if K_file.endswith(".json"):
            with open(K_file) as f:
                K = np.asarray(json.load(f), np.float64)
        else:
            K = np.load(K_file) if K_file.endswith(".npy") else np.loadtxt(K_file)
    except (OSError, ValueError, TypeError) as e:
        raise InputError(f"{K_file}: cannot read intrinsics ({e})") from None
    if np.shape(K) != (3, 3) or not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise InputError(f"{K_file}: intrinsics must be a finite 3x3 matrix with positive focal lengths, "
                         f"got {np.array2string(np.asarray(K), separator=',') if np.size(K) <= 9 else np.shape(K)}")
    return np.asarray(K, np.float32)


def capture_paths(files: list[str], out_dir: str, taken: Optional[set] = None) -> list[str]:
    """OUT/<stem>.npz for each input, in order; a later input with a stem already used (in
    ``taken``, which grows) gets <stem>_2.npz, <stem>_3.npz, ... Planned before any input runs, so
    every run over the same inputs (plain, or spread over a Ray cluster, or resumed) names the same
    input the same way."""
    taken = set() if taken is None else taken
    paths = []
    for source in files:
        stem = os.path.splitext(os.path.basename(source))[0]
        path, n = os.path.join(out_dir, stem + ".npz"), 1
        while path in taken:
            n += 1
            path = os.path.join(out_dir, f"{stem}_{n}.npz")
        taken.add(path)
        paths.append(path)
    return paths


def overlay_path(capture_path: str, kind: str) -> str:
    """The overlay beside a capture file: <capture stem>_overlay.png (photos) or .mp4 (videos)."""
    return os.path.splitext(capture_path)[0] + ("_overlay.png" if kind == "image" else "_overlay.mp4")
