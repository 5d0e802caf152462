"""Headless conversions: capture files (or photos/videos, through the engine) to .blend/.fbx/.glb.

``blend_captures`` is ``handcap blend``: several captures into one scene, one output file.
``convert_inputs`` is the batch script: one output per input, going on past failures.
Both start from an empty scene and write atomically.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile

import bpy

from . import build_camera, engine, export_scene, import_capture
from .capture_format import load_capture

CAPTURE_EXTENSIONS = (".npz",)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


@dataclasses.dataclass
class Converted:
    """One batch input and what became of it."""

    input: str
    output: str = ""
    error: str = ""


def blend_captures(capture_paths: list, out_path: str) -> str:
    """Capture files -> one scene (a collection each) written to ``out_path`` (.blend/.fbx/.glb).

    Every file is validated before the scene is reset; raises CaptureError / ValueError.
    """
    export_scene.format_of(out_path)
    captures = [load_capture(path) for path in capture_paths]
    bpy.ops.wm.read_factory_settings(use_empty=True)
    import_capture.import_captures(captures, list(capture_paths), bpy.context)
    return export_scene.write_scene(out_path)


def convert_capture(capture_path: str, out_path: str) -> str:
    """One capture file -> ``out_path`` (.blend/.fbx/.glb by its extension)."""
    return blend_captures([capture_path], out_path)


def convert_many(capture_paths: list, output: str, log=print) -> int:
    """``handcap blend``: OUT.blend|.fbx|.glb gets every capture in one scene; any other OUT is
    a folder getting one .blend per capture. Prints what it did; returns an exit status.
    """
    ext = os.path.splitext(output)[1].lower().lstrip(".")
    if ext and ext not in export_scene.FORMATS and not os.path.isdir(output):
        log(f"handcap blend: {output}: unknown output type {ext!r} (use .blend, .fbx, .glb or a folder)")
        return 1
    if ext in export_scene.FORMATS:
        try:
            written = blend_captures(capture_paths, output)
        except Exception as e:
            log(f"handcap blend: {e}")
            return 1
        log(f"handcap blend: {len(capture_paths)} capture(s) -> {written}")
        return 0
    results = convert_inputs(capture_paths, output, "blend", log=log)
    failed = [r for r in results if r.error]
    log(f"handcap blend: {len(results) - len(failed)} converted, {len(failed)} failed")
    return 1 if failed or not results else 0


def expand_inputs(inputs: list) -> list:
    """Input paths with folders replaced by the capture files, photos and videos inside them."""
    known = CAPTURE_EXTENSIONS + IMAGE_EXTENSIONS + build_camera.VIDEO_EXTENSIONS
    paths = []
    for path in inputs:
        if os.path.isdir(path):
            paths += sorted(os.path.join(path, name) for name in os.listdir(path)
                            if os.path.splitext(name)[1].lower() in known)
        else:
            paths.append(path)
    return paths


def convert_inputs(inputs: list, out_dir: str, fmt: str = "blend", engine_python: str = "",
                   options: engine.EstimateOptions = None, log=print) -> list:
    """Each input -> ``out_dir/<stem>.<fmt>``; returns a Converted per input, errors included."""
    if fmt not in export_scene.FORMATS:
        raise ValueError(f"unknown format {fmt!r} (use one of {', '.join(export_scene.FORMATS)})")
    results, taken = [], set()
    for path in expand_inputs(inputs):
        item = Converted(path)
        stem = os.path.splitext(os.path.basename(path))[0]
        name, n = stem, 1
        while name in taken:                      # same file name from different folders
            n += 1
            name = f"{stem}_{n}"
        taken.add(name)
        out = os.path.join(out_dir, f"{name}.{fmt}")
        try:
            if not os.path.isfile(path):
                raise FileNotFoundError(f"{path}: no such file")
            if path.lower().endswith(CAPTURE_EXTENSIONS):
                item.output = blend_captures([path], out)
            else:
                item.output = _estimate_and_blend(path, out, engine_python, options, log)
            log(f"ok      {path} -> {item.output}")
        except Exception as e:  # one bad input must not stop the batch
            item.error = str(e) or type(e).__name__
            log(f"FAILED  {path}: {item.error}")
        results.append(item)
    return results


def _estimate_and_blend(path: str, out: str, engine_python: str, options, log) -> str:
    """Photo/video -> capture file(s) via the engine (in a temporary folder) -> ``out``."""
    python = engine.find_engine_python(engine_python)
    with tempfile.TemporaryDirectory(prefix="handcap-") as tmp:
        def show(event, run):
            log(f"        {os.path.basename(path)}: {run.progress.text()}")
        captures = engine.run_estimate(python, path, tmp, options, on_event=show)
        return blend_captures(captures, out)
