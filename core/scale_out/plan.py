"""The work of a ``--ray`` run: inputs already done (resume) and tasks for the rest (no ray).

A task is one video, or up to PHOTOS_PER_TASK photos of one folder (a photo takes a fraction of a
second, a task's round trip a few milliseconds; the cap keeps a folder of thousands spread over the
cluster). Capture names are planned once for all inputs (``core.engine.inputs.capture_paths``), so a
run, its retries and a resumed run write every input to the same file.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional

from blender_addon.capture_format import CaptureError, load_capture
from blender_addon.output_files import is_temporary
from core.engine.inputs import VIDEO_EXTENSIONS, overlay_path

PHOTOS_PER_TASK = 16


@dataclasses.dataclass
class Item:
    """One input and where its capture file goes (``order``: its place among all inputs)."""

    order: int
    source: str
    capture: str


@dataclasses.dataclass
class Task:
    """What one Ray task estimates: a video, or photos of one folder."""

    items: list


def is_video(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS


def overlay_of(item: Item) -> str:
    """The overlay file an input gets with --overlay."""
    return overlay_path(item.capture, "video" if is_video(item.source) else "image")


def finished_hands(item: Item, overlay: bool) -> Optional[int]:
    """The number of hands in ``item``'s capture file when it is complete (it loads, it was made from
    this very input, and its overlay is there when one is asked for), else None. Files are written
    atomically, so a file that exists is whole; loading also validates it."""
    if not os.path.isfile(item.capture) or (overlay and not os.path.isfile(overlay_of(item))):
        return None
    try:
        capture = load_capture(item.capture)
    except (CaptureError, OSError, ValueError):
        return None
    if os.path.abspath(str(capture.source_path)) != os.path.abspath(item.source):
        return None
    return len(capture.tracks)


def make_tasks(items: list) -> list:
    """Videos one task each; photos (and anything else, which fails in the worker like in a plain
    run) grouped by folder, at most PHOTOS_PER_TASK per task. Videos first: they take longest, so
    the photos fill the gaps at the end."""
    videos = [Task([item]) for item in items if is_video(item.source)]
    folders: dict = {}
    for item in items:
        if not is_video(item.source):
            folders.setdefault(os.path.dirname(os.path.abspath(item.source)), []).append(item)
    photos = [Task(group[i:i + PHOTOS_PER_TASK]) for group in folders.values()
              for i in range(0, len(group), PHOTOS_PER_TASK)]
    return videos + photos


def leftover_temporaries(items: list) -> list:
    """Temporary files of these inputs' outputs left by a worker killed while writing (its
    ``atomic_output`` never got to remove them): paths to delete once no worker writes any more."""
    found = []
    for item in items:
        for target in (item.capture, overlay_of(item)):
            folder, name = os.path.split(target)
            try:
                names = os.listdir(folder)
            except OSError:
                continue
            found += [os.path.join(folder, n) for n in names if is_temporary(n) and n.startswith(f".{name}.")]
    return sorted(set(found))
