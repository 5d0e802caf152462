"""Several views for Estimate Hand: check the panel's files before the engine starts (no bpy).

The engine (``core``, which the add-on cannot import) reads the cameras file in full; this only
catches what a user gets wrong most often, with a message naming the file: fewer than two views,
a view that is not there or chosen twice, a cameras file that is missing, not JSON, or has another
number of entries than there are views. The cameras file is a JSON list, one entry per view in the
panel's order: ``{"K": 3x3 pixels, "R": 3x3, "t": [3] metres}``, ``x_view = R @ x_first + t`` (OpenCV
axes), the first entry R = I, t = 0 (docs/blender_addon.md, core/multiview/cameras.py).
"""

from __future__ import annotations

import json
import os

MAX_CAMERAS_BYTES = 10 * 1024 * 1024        # a cameras file is a few kB; refuse to parse anything huge
_SHAPES = (("K", (3, 3)), ("R", (3, 3)), ("t", (3,)))


class ViewsError(ValueError):
    """The views or the cameras file the user chose cannot work; the message is meant for the user."""


def check_views(view_paths: list, cameras_path: str) -> None:
    """Raise ViewsError unless there are at least two views, each an existing file chosen once, and
    ``cameras_path`` is a readable JSON list of one {K, R, t} entry per view."""
    paths = [str(p) for p in view_paths]
    if len(paths) < 2:
        raise ViewsError(f"choose at least two views (photos taken at one instant, or videos filmed together); "
                         f"{len(paths)} chosen")
    for i, path in enumerate(paths):
        if not path:
            raise ViewsError(f"view {i + 1} has no file: choose one, or remove the view")
        if not os.path.isfile(path):
            raise ViewsError(f"view {i + 1}: {path}: no such file")
    real = [os.path.realpath(p) for p in paths]
    for i, path in enumerate(real):
        if real.index(path) != i:
            raise ViewsError(f"views {real.index(path) + 1} and {i + 1} are the same file ({paths[i]})")
    entries = read_cameras(cameras_path)
    if len(entries) != len(paths):
        raise ViewsError(f"{cameras_path}: {len(entries)} camera(s) for {len(paths)} views: the cameras file needs "
                         "one entry per view, in the order of the views")


def read_cameras(path: str) -> list:
    """The entries of a cameras file (a list of dicts with K, R, t of the right shapes), or ViewsError."""
    if not path:
        raise ViewsError("choose the cameras file (CAMERAS.json: one {K, R, t} per view, "
                         "from 'handcap calibrate')")
    if not os.path.isfile(path):
        raise ViewsError(f"cameras file {path}: no such file")
    if os.path.getsize(path) > MAX_CAMERAS_BYTES:
        raise ViewsError(f"cameras file {path}: too large to be a cameras file")
    try:
        with open(path, encoding="utf-8") as f:
            entries = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ViewsError(f"cameras file {path}: not readable JSON ({e})") from None
    if isinstance(entries, dict) and "cameras" in entries:       # as core's reader: {"cameras": [...], ...}
        entries = entries["cameras"]
    if not isinstance(entries, list):
        raise ViewsError(f"cameras file {path}: must hold a JSON list (one entry per view), "
                         f"not a {type(entries).__name__}")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ViewsError(f"cameras file {path}: entry {i} must be an object with K, R and t")
        for key, shape in _SHAPES:
            if key not in entry:
                raise ViewsError(f"cameras file {path}: entry {i} has no '{key}'")
            if not _is_numbers(entry[key], shape):
                raise ViewsError(f"cameras file {path}: entry {i}: '{key}' must be {_shape_text(shape)} numbers")
    return entries


def _is_numbers(value, shape: tuple) -> bool:
    """Whether ``value`` is nested lists of numbers of ``shape`` (booleans are not numbers)."""
    if not shape:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return (isinstance(value, list) and len(value) == shape[0]
            and all(_is_numbers(v, shape[1:]) for v in value))


def _shape_text(shape: tuple) -> str:
    return "x".join(str(n) for n in shape) if len(shape) > 1 else f"{shape[0]}"
