"""The handcap capture file: the contract between the engine (core) and Blender.

A capture file is a plain ``.npz`` (readable with numpy alone, ``allow_pickle=False``)
that holds everything needed to rebuild the animated hand without the engine.
This module needs only numpy and the standard library so that Blender's own Python
can read it; the engine (core) writes it with the same code.

Conventions
-----------
* Units: metres for 3D, pixels for 2D, radians for rotations.
* Camera space is OpenCV's: x right, y down, z forward (into the scene).
* ``K`` is the 3x3 pinhole intrinsic matrix in pixels; ``image_size`` is (width, height).
* A hand track's rest mesh is that subject's mesh in the hand model's own frame, zero pose,
  shape already applied. Left hands are stored already mirrored (x negated, winding reversed),
  so a reader builds exactly what it finds.
* Posing (linear blend skinning, as the engine's hand layer does it): joint j's world
  transform is ``G_j = G_parent(j) @ [R_j | rest_joint_j - rest_joint_parent]`` with
  ``R_j = rodrigues(pose[f, j])``; vertex ``v = sum_j w_vj G_j (v_rest + corrective - rest_joint_j)``;
  then ``+ transl[f]``. So joint 0 (the wrist) rotates the whole hand about its rest position
  ``rest_joints[0]`` and ``transl`` moves it in camera space.
* Pose correctives (optional, MANO's ``posedirs``): ``corrective = sum_k c_k * pose_correctives[k]``
  with features ``c = (R_j - I)`` for joints 1..J-1, flattened row-major as (joint, row, col):
  ``(J-1)*9`` features.

Layout (keys of the npz)
------------------------
Top level:
  ``format`` str "handcap-capture", ``version`` int, ``hand_model`` str, ``source_path`` str,
  ``image_size`` int32 (2,), ``K`` float32 (3,3), ``fps`` float32 () (0 for a still photo),
  ``num_tracks`` int32 ().
Per hand track t, keys prefixed ``track{t}/``:
  ``side`` str "right"|"left", ``betas`` float32 (S,), ``rest_vertices`` float32 (V,3),
  ``faces`` int32 (F,3), ``face_uvs`` float32 (F,3,2) [optional], ``skin_weights`` float32 (V,J),
  ``rest_joints`` float32 (J,3), ``parents`` int32 (J,), ``joint_names`` str (J,),
  ``pose_correctives`` float32 ((J-1)*9,V,3) [optional],
  per frame (N frames): ``frame_index`` int32 (N,), ``pose`` float32 (N,J,3) axis-angle,
  ``transl`` float32 (N,3), ``joints_3d`` float32 (N,K,3) camera space,
  ``keypoints_2d`` float32 (N,K,2) pixels, ``confidence`` float32 (N,), ``valid`` bool (N,).
  K is 21: the 16 joints plus 5 fingertips in FreiHAND/OpenPose order.
  ``person`` int32 () [optional]: which person of the photo the hand belongs to (0, 1, ...: the
  engine's people in the order it found them), -1 when not known; a file without it reads as -1.
  ``interpolated`` bool (N,) [optional]: frames where the hand was not seen but lay inside a short
  gap, filled by the engine's temporal solve (such frames are valid); a file without it reads as
  all False. An interpolated frame must be valid.
  (A new optional key keeps the version: readers ignore keys they do not know.)
Several cameras (optional, all six keys or none; a file without them has one view, the top-level camera):
  ``views/K`` float32 (C,3,3), ``views/R`` float32 (C,3,3), ``views/t`` float32 (C,3): view c sees a point
  x of the first camera's space (the space of every track) at ``R[c] @ x + t[c]`` (OpenCV axes, metres);
  view 0 is the top-level camera (``K``, ``image_size``, ``source_path``), with R = I and t = 0.
  ``views/image_size`` int32 (C,2), ``views/source_path`` str (C,), ``views/frame_offset`` int32 (C,):
  view c's frame ``frame_index + frame_offset[c]`` shows the first view's frame ``frame_index``.
"""

from __future__ import annotations

import dataclasses
import os
import tokenize
import zipfile
import zlib
from typing import Optional

import numpy as np

from .output_files import atomic_output

FORMAT_NAME = "handcap-capture"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)
NUM_KEYPOINTS = 21


class CaptureError(ValueError):
    """A capture file is missing something, or something in it has the wrong shape or value."""


@dataclasses.dataclass
class HandTrack:
    """One hand seen over a run of frames: its rig (rest mesh, skeleton) and its motion."""

    side: str                     # "right" | "left"
    betas: np.ndarray             # (S,) shape coefficients
    rest_vertices: np.ndarray     # (V, 3) metres, zero pose, this subject's shape
    faces: np.ndarray             # (F, 3) vertex indices, counter-clockwise = outward
    skin_weights: np.ndarray      # (V, J) rows sum to 1
    rest_joints: np.ndarray       # (J, 3) metres
    parents: np.ndarray           # (J,) parent joint index, -1 for the root
    joint_names: np.ndarray       # (J,) str
    frame_index: np.ndarray       # (N,) source frame of each pose
    pose: np.ndarray              # (N, J, 3) axis-angle, radians, relative to parent
    transl: np.ndarray            # (N, 3) metres, camera space
    joints_3d: np.ndarray         # (N, 21, 3) metres, camera space
    keypoints_2d: np.ndarray      # (N, 21, 2) pixels
    confidence: np.ndarray        # (N,) in [0, 1]
    valid: np.ndarray             # (N,) bool: False where no hand was seen (and no short gap was filled)
    face_uvs: Optional[np.ndarray] = None         # (F, 3, 2) per-corner UVs
    pose_correctives: Optional[np.ndarray] = None  # ((J-1)*9, V, 3) metres per unit feature
    person: int = -1              # which person of the photo the hand belongs to; -1: not known
    interpolated: Optional[np.ndarray] = None     # (N,) bool: not seen, filled over a short gap; None: all False

    def __post_init__(self):
        if self.interpolated is None:
            self.interpolated = np.zeros(len(self.valid), bool)

    @property
    def num_frames(self) -> int:
        return int(self.pose.shape[0])


@dataclasses.dataclass
class Capture:
    """A whole capture: the camera, the source, and one track per hand."""

    hand_model: str               # e.g. "open_hand" or "mano"
    source_path: str              # the photo or video the capture came from ("" if none)
    image_size: np.ndarray        # (2,) int: width, height in pixels
    K: np.ndarray                 # (3, 3) pinhole intrinsics, pixels
    fps: float                    # frames per second of the source; 0 for a still photo
    tracks: list = dataclasses.field(default_factory=list)  # list[HandTrack]
    version: int = FORMAT_VERSION
    views: Optional["CaptureViews"] = None   # several cameras; None: the one camera above


@dataclasses.dataclass
class CaptureViews:
    """The cameras of a multi-view capture (C views; view 0 is the capture's own camera)."""

    K: np.ndarray             # (C, 3, 3) pinhole intrinsics, pixels
    R: np.ndarray             # (C, 3, 3) x_view = R @ x_first + t
    t: np.ndarray             # (C, 3) metres
    image_size: np.ndarray    # (C, 2) int: width, height in pixels
    source_path: np.ndarray   # (C,) str: each view's photo or video
    frame_offset: np.ndarray  # (C,) int: view c's frame = first view's frame + frame_offset[c]

    @property
    def num_views(self) -> int:
        return int(len(self.K))


# --- field specs: (key, dtype kind, shape with symbols, required) -------------------------
# Symbols: V vertices, F faces, J joints, S betas, N frames, K keypoints (=21), P correctives.
_TRACK_FIELDS = (
    ("side", "U", (), True),
    ("betas", "f", ("S",), True),
    ("rest_vertices", "f", ("V", 3), True),
    ("faces", "i", ("F", 3), True),
    ("face_uvs", "f", ("F", 3, 2), False),
    ("skin_weights", "f", ("V", "J"), True),
    ("rest_joints", "f", ("J", 3), True),
    ("parents", "i", ("J",), True),
    ("joint_names", "U", ("J",), True),
    ("pose_correctives", "f", ("P", "V", 3), False),
    ("frame_index", "i", ("N",), True),
    ("pose", "f", ("N", "J", 3), True),
    ("transl", "f", ("N", 3), True),
    ("joints_3d", "f", ("N", "K", 3), True),
    ("keypoints_2d", "f", ("N", "K", 2), True),
    ("confidence", "f", ("N",), True),
    ("valid", "b", ("N",), True),
    ("person", "i", (), False),
    ("interpolated", "b", ("N",), False),
)
_DTYPES = {"f": np.float32, "i": np.int32, "b": np.bool_}
# (key under "views/", dtype kind, shape); C views
_VIEW_FIELDS = (
    ("K", "f", ("C", 3, 3)),
    ("R", "f", ("C", 3, 3)),
    ("t", "f", ("C", 3)),
    ("image_size", "i", ("C", 2)),
    ("source_path", "U", ("C",)),
    ("frame_offset", "i", ("C",)),
)


def save_capture(capture: Capture, path: str) -> None:
    """Validate ``capture`` and write it to ``path`` atomically (temporary file, then rename)."""
    arrays = _to_arrays(capture)
    validate_arrays(arrays)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)


def load_capture(path: str) -> Capture:
    """Read and validate a capture file; raise CaptureError naming the file and the first problem."""
    if not os.path.exists(path):
        raise CaptureError(f"{path}: no such file")
    if not os.path.isfile(path):
        raise CaptureError(f"{path}: not a file")
    if not zipfile.is_zipfile(path):
        raise CaptureError(f"{path}: not a capture file (a capture file is an .npz archive; this file is not one)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError,
            SyntaxError, tokenize.TokenError) as e:       # the last two: numpy parsing a damaged array header
        raise CaptureError(f"{path}: not a readable capture file (damaged .npz: {e})") from None
    try:
        validate_arrays(arrays)
        return _from_arrays(arrays)
    except CaptureError as e:
        raise CaptureError(f"{path}: {e}") from None
    except (TypeError, ValueError, IndexError, KeyError) as e:      # values validate_arrays has no rule for
        raise CaptureError(f"{path}: not a valid capture file ({type(e).__name__}: {e})") from None


def validate_arrays(arrays: dict) -> None:
    """Check every key, dtype, shape and value; raise CaptureError naming the first problem."""
    def get(key):
        if key not in arrays:
            raise CaptureError(f"missing key '{key}'")
        return np.asarray(arrays[key])

    if str(get("format")) != FORMAT_NAME:
        raise CaptureError(f"'format' is {str(get('format'))!r}, expected {FORMAT_NAME!r}")
    version = int(get("version"))
    if version not in SUPPORTED_VERSIONS:
        raise CaptureError(f"unknown format version {version} (this reader knows {SUPPORTED_VERSIONS})")
    get("hand_model"), get("source_path")
    _check("image_size", get("image_size"), "i", (2,), {})
    if np.any(get("image_size") <= 0):
        raise CaptureError(f"'image_size' must be positive, got {get('image_size').tolist()}")
    _check("K", get("K"), "f", (3, 3), {})
    _check("fps", get("fps"), "f", (), {})
    if float(get("fps")) < 0:
        raise CaptureError("'fps' must be >= 0")
    num_tracks = int(get("num_tracks"))
    if num_tracks < 0:
        raise CaptureError("'num_tracks' must be >= 0")
    for t in range(num_tracks):
        _validate_track(arrays, f"track{t}/")
    _validate_views(arrays)


def _validate_views(arrays: dict) -> None:
    """The optional ``views/`` keys: all or none, shapes agreeing, rotations orthonormal, view 0 the identity."""
    present = [key for key, _, _ in _VIEW_FIELDS if "views/" + key in arrays]
    if not present:
        return
    if len(present) != len(_VIEW_FIELDS):
        missing = [key for key, _, _ in _VIEW_FIELDS if key not in present]
        raise CaptureError(f"'views/' keys come all together; missing 'views/{missing[0]}'")
    sizes = {}
    for key, kind, shape in _VIEW_FIELDS:
        _check("views/" + key, np.asarray(arrays["views/" + key]), kind, shape, sizes)
    R, t = np.asarray(arrays["views/R"], np.float64), np.asarray(arrays["views/t"], np.float64)
    if sizes["C"] < 1:
        raise CaptureError("'views/K' must hold at least one view")
    if np.any(np.abs(R @ np.swapaxes(R, 1, 2) - np.eye(3)) > 1e-3) or np.any(np.linalg.det(R) < 0):
        raise CaptureError("'views/R' must hold rotations (orthonormal, determinant +1)")
    if np.any(np.abs(R[0] - np.eye(3)) > 1e-4) or np.any(np.abs(t[0]) > 1e-6):
        raise CaptureError("'views/R'[0] and 'views/t'[0] must be the identity: view 0 is the capture's own camera")
    if np.any(np.asarray(arrays["views/image_size"]) <= 0):
        raise CaptureError("'views/image_size' must be positive")


def _validate_track(arrays: dict, prefix: str) -> None:
    sizes = {"K": NUM_KEYPOINTS}
    for key, kind, shape, required in _TRACK_FIELDS:
        name = prefix + key
        if name not in arrays:
            if required:
                raise CaptureError(f"missing key '{name}'")
            continue
        _check(name, np.asarray(arrays[name]), kind, shape, sizes)
    side = str(arrays[prefix + "side"])
    if side not in ("right", "left"):
        raise CaptureError(f"'{prefix}side' is {side!r}, expected 'right' or 'left'")
    J, V = sizes["J"], sizes["V"]
    if "P" in sizes and sizes["P"] != (J - 1) * 9:
        raise CaptureError(f"'{prefix}pose_correctives' has {sizes['P']} features, expected {(J - 1) * 9}")
    faces = arrays[prefix + "faces"]
    if faces.size and (faces.min() < 0 or faces.max() >= V):
        raise CaptureError(f"'{prefix}faces' index out of range [0, {V})")
    parents = arrays[prefix + "parents"]
    if parents[0] != -1 or np.any(parents[1:] < 0) or np.any(parents[1:] >= np.arange(1, J)):
        raise CaptureError(f"'{prefix}parents' must be -1 for the root and point to earlier joints")
    if prefix + "person" in arrays and int(arrays[prefix + "person"]) < -1:
        raise CaptureError(f"'{prefix}person' must be -1 (not known) or a person index >= 0")
    if prefix + "interpolated" in arrays and np.any(arrays[prefix + "interpolated"] & ~arrays[prefix + "valid"]):
        raise CaptureError(f"'{prefix}interpolated' frames must be valid")
    weights = arrays[prefix + "skin_weights"]
    if np.any(np.abs(weights.sum(axis=1) - 1.0) > 1e-3) or np.any(weights < -1e-6):
        raise CaptureError(f"'{prefix}skin_weights' rows must be non-negative and sum to 1")


def _check(name: str, a: np.ndarray, kind: str, shape: tuple, sizes: dict) -> None:
    """Check dtype kind, shape (binding symbolic sizes into ``sizes``) and finiteness."""
    if kind == "U":
        if a.dtype.kind != "U":
            raise CaptureError(f"'{name}' must be text, got dtype {a.dtype}")
    elif kind == "f" and a.dtype.kind != "f":
        raise CaptureError(f"'{name}' must be floating point, got dtype {a.dtype}")
    elif kind == "i" and a.dtype.kind not in "iu":
        raise CaptureError(f"'{name}' must be integer, got dtype {a.dtype}")
    elif kind == "b" and a.dtype.kind != "b":
        raise CaptureError(f"'{name}' must be boolean, got dtype {a.dtype}")
    if a.ndim != len(shape):
        raise CaptureError(f"'{name}' must have shape {_fmt(shape)}, got {a.shape}")
    for dim, want in zip(a.shape, shape):
        if isinstance(want, str):
            want = sizes.setdefault(want, dim)
        if dim != want:
            raise CaptureError(f"'{name}' must have shape {_fmt(shape, sizes)}, got {a.shape}")
    if kind == "f" and not np.all(np.isfinite(a)):
        raise CaptureError(f"'{name}' contains NaN or infinite values")


def _fmt(shape: tuple, sizes: dict = None) -> str:
    sizes = sizes or {}
    return "(" + ", ".join(str(sizes.get(d, d)) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _to_arrays(capture: Capture) -> dict:
    arrays = {
        "format": np.array(FORMAT_NAME),
        "version": np.array(capture.version, np.int32),
        "hand_model": np.array(capture.hand_model),
        "source_path": np.array(capture.source_path),
        "image_size": np.asarray(capture.image_size, np.int32),
        "K": np.asarray(capture.K, np.float32),
        "fps": np.array(capture.fps, np.float32),
        "num_tracks": np.array(len(capture.tracks), np.int32),
    }
    for t, track in enumerate(capture.tracks):
        for key, kind, _shape, _required in _TRACK_FIELDS:
            value = getattr(track, key)
            if value is None:
                continue
            arrays[f"track{t}/{key}"] = np.asarray(value, _DTYPES[kind]) if kind in _DTYPES else np.asarray(value, str)
    if capture.views is not None:
        for key, kind, _shape in _VIEW_FIELDS:
            value = getattr(capture.views, key)
            arrays["views/" + key] = np.asarray(value, _DTYPES[kind]) if kind in _DTYPES else np.asarray(value, str)
    return arrays


def _from_arrays(arrays: dict) -> Capture:
    tracks = []
    for t in range(int(arrays["num_tracks"])):
        fields = {}
        for key, kind, _shape, _required in _TRACK_FIELDS:
            name = f"track{t}/{key}"
            if name in arrays:
                value = arrays[name]
                if key == "side":
                    fields[key] = str(value)
                elif key == "person":
                    fields[key] = int(value)
                else:
                    fields[key] = value.astype(_DTYPES[kind]) if kind in _DTYPES else value
        tracks.append(HandTrack(**fields))
    return Capture(
        hand_model=str(arrays["hand_model"]),
        source_path=str(arrays["source_path"]),
        image_size=arrays["image_size"].astype(np.int32),
        K=arrays["K"].astype(np.float32),
        fps=float(arrays["fps"]),
        tracks=tracks,
        version=int(arrays["version"]),
        views=CaptureViews(**{key: arrays["views/" + key].astype(_DTYPES[kind]) if kind in _DTYPES
                              else arrays["views/" + key] for key, kind, _ in _VIEW_FIELDS})
        if "views/K" in arrays else None,
    )
