"""Headless conversions: capture files (or photos/videos, through the engine) to .blend/.fbx/.glb.

``blend_captures`` is ``handcap blend``: several captures into one scene, one output file.
``convert_inputs`` is the batch script: one output per input, going on past failures;
``convert_views`` its ``--views``: several views of one scene and their cameras file, one output.
Both start from an empty scene and write atomically; error lines go to stderr, and the exit
codes are ``exit_codes``'.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile

import bpy

from . import build_camera, engine, exit_codes, export_scene, import_capture, views_input
from .capture_format import load_capture

CAPTURE_EXTENSIONS = (".npz",)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


@dataclasses.dataclass
class Converted:
    """One batch input and what became of it: its output and number of hands, or its error."""

    input: str
    output: str = ""
    error: str = ""
    hands: int = 0


def error_line(prefix: str, path: str, message: str) -> str:
    """'<prefix>: error: <path>: <problem>' on one line (the path once, even if the message has it)."""
    message = " ".join(str(message).split())
    if not message.startswith(str(path)):
        message = f"{path}: {message}"
    return f"{prefix}: error: {message}"


def _print_error(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _blend(capture_paths: list, out_path: str) -> tuple:
    """Capture files -> one scene written to ``out_path``; (the path written, number of hands)."""
    export_scene.format_of(out_path)
    captures = [load_capture(path) for path in capture_paths]
    bpy.ops.wm.read_factory_settings(use_empty=True)
    import_capture.import_captures(captures, list(capture_paths), bpy.context)
    return export_scene.write_scene(out_path), sum(len(c.tracks) for c in captures)


def blend_captures(capture_paths: list, out_path: str) -> str:
    """Capture files -> one scene (a collection each) written to ``out_path`` (.blend/.fbx/.glb).

    Every file is validated before the scene is reset; raises CaptureError / ValueError.
    """
    return _blend(capture_paths, out_path)[0]


def convert_capture(capture_path: str, out_path: str) -> str:
    """One capture file -> ``out_path`` (.blend/.fbx/.glb by its extension)."""
    return blend_captures([capture_path], out_path)


def convert_many(capture_paths: list, output: str, log=print, log_error=_print_error) -> int:
    """``handcap blend``: OUT.blend|.fbx|.glb gets every capture in one scene; any other OUT is
    a folder getting one .blend per capture. Prints what it did (errors on stderr); returns the
    exit code (``exit_codes``: 3 when a capture holds no hand; its scene has the camera only).
    """
    ext = os.path.splitext(output)[1].lower().lstrip(".")
    if ext and ext not in export_scene.FORMATS and not os.path.isdir(output):
        log_error(f"handcap blend: error: {output}: unknown output type {ext!r} (use .blend, .fbx, .glb or a folder)")
        return exit_codes.USAGE
    if ext in export_scene.FORMATS:
        try:
            written, hands = _blend(capture_paths, output)
        except Exception as e:               # a capture that cannot be read or built: nothing is written
            log_error(f"handcap blend: error: {' '.join(str(e).split()) or type(e).__name__}")
            return exit_codes.FAILED
        log(f"handcap blend: {len(capture_paths)} capture(s), {hands} hand(s) -> {written}")
        return exit_codes.OK if hands else exit_codes.NO_HAND
    results = convert_inputs(capture_paths, output, "blend", log=log, log_error=log_error, prefix="handcap blend")
    failed = [r for r in results if r.error]
    without = [r for r in results if not r.error and not r.hands]
    log(f"handcap blend: {len(results) - len(failed)} converted, {len(failed)} failed"
        + (f", no hand in {len(without)}" if without else ""))
    return exit_codes.exit_code(len(failed), len(without), len(results))


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


def _retarget(job):
    """A stand-in for ``_blend`` that puts the captures on ``job``'s rig instead (retarget.headless)."""
    from .retarget import headless

    def make(capture_paths: list, out_path: str) -> tuple:
        hands = sum(len(load_capture(p).tracks) for p in capture_paths)
        return headless.retarget_captures(capture_paths, job, out_path)[0], hands
    return make


def convert_inputs(inputs: list, out_dir: str, fmt: str = "blend", engine_python: str = "",
                   options: engine.EstimateOptions = None, log=print, log_error=_print_error,
                   prefix: str = "handcap batch", retarget=None) -> list:
    """Each input -> ``out_dir/<stem>.<fmt>``; returns a Converted per input, errors included.
    Progress and results go to ``log``, one error line per failed input to ``log_error``.
    With ``retarget`` (a ``retarget.headless.RetargetJob``) each output is the job's rig with
    the input's take on it (.blend or .fbx)."""
    if fmt not in export_scene.FORMATS:
        raise ValueError(f"unknown format {fmt!r} (use one of {', '.join(export_scene.FORMATS)})")
    make = _blend if retarget is None else _retarget(retarget)
    results, taken = [], set()
    paths = expand_inputs(inputs)
    together = _estimate_together(paths, out_dir, engine_python, options, log) \
        if options is not None and options.ray is not None else None
    for path in paths:
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
                item.output, item.hands = make([path], out)
            elif together is not None:
                item.output, item.hands = make([together(path)], out)
            else:
                item.output, item.hands = _estimate_and_blend(path, out, engine_python, options, log, make)
            log(f"ok      {path} -> {item.output}" + ("" if item.hands else " (no hand found)"))
        except Exception as e:  # one bad input must not stop the batch
            item.error = " ".join(str(e).split()) or type(e).__name__
            log_error(error_line(prefix, path, item.error))
        results.append(item)
    return results


def _estimate_together(paths: list, out_dir: str, engine_python: str, options, log):
    """``--ray``: every photo and video through one engine run on a Ray cluster, into
    ``out_dir/captures`` (kept: a batch run again resumes there). Returns a function: input path
    -> its capture file, or an exception saying why it has none."""
    media = [p for p in paths if os.path.isfile(p) and not p.lower().endswith(CAPTURE_EXTENSIONS)]
    captures, errors, failure = {}, {}, None
    if media:
        shown = set()

        def show(event, run):                     # a line per input done (the engine says more, every second)
            if event.get("stage") == "inputs" and event.get("done") not in shown:
                shown.add(event.get("done"))
                log(f"        engine on Ray: {run.progress.text()}")
        try:
            python = engine.find_engine_python(engine_python)
            outputs, errors = engine.run_estimate_together(python, media, os.path.join(out_dir, "captures"),
                                                           options, on_event=show)
            for capture in outputs:
                captures[os.path.abspath(load_capture(capture).source_path)] = capture
        except Exception as e:              # the engine run as a whole: every photo and video fails with it
            failure = " ".join(str(e).split()) or type(e).__name__

    def capture_of(path: str) -> str:
        source = os.path.abspath(path)
        if source in captures:
            return captures[source]
        raise RuntimeError(failure or errors.get(source) or "the engine wrote no capture file for it")
    return capture_of


def _estimate_and_blend(path: str, out: str, engine_python: str, options, log, make=_blend) -> tuple:
    """Photo/video -> capture file(s) via the engine (in a temporary folder) -> ``out``; (path, hands)."""
    python = engine.find_engine_python(engine_python)
    with tempfile.TemporaryDirectory(prefix="handcap-") as tmp:
        def show(event, run):
            log(f"        {os.path.basename(path)}: {run.progress.text()}")
        captures = engine.run_estimate(python, path, tmp, options, on_event=show)
        return make(captures, out)


def convert_views(view_paths: list, cameras_path: str, out_dir: str, fmt: str = "blend", engine_python: str = "",
                  options: engine.EstimateOptions = None, log=print, log_error=_print_error,
                  prefix: str = "handcap batch", retarget=None) -> Converted:
    """Several views of one scene (photos of one instant, or videos filmed together) and their cameras
    file -> one engine run -> ``out_dir/<first view's stem>.<fmt>`` with every view's camera. The views
    are checked first (``views_input``); an error is logged and returned in the Converted, as for any input."""
    if fmt not in export_scene.FORMATS:
        raise ValueError(f"unknown format {fmt!r} (use one of {', '.join(export_scene.FORMATS)})")
    make = _blend if retarget is None else _retarget(retarget)
    first = str(view_paths[0]) if view_paths else ""
    item = Converted(first)
    out = os.path.join(out_dir, os.path.splitext(os.path.basename(first))[0] + f".{fmt}")
    try:
        views_input.check_views(view_paths, cameras_path)
        python = engine.find_engine_python(engine_python)
        with tempfile.TemporaryDirectory(prefix="handcap-") as tmp:
            def show(event, run):
                log(f"        {len(view_paths)} views: {run.progress.text()}")
            captures = engine.run_estimate_views(python, view_paths, cameras_path, tmp, options, on_event=show)
            item.output, item.hands = make(captures, out)
        log(f"ok      {', '.join(map(str, view_paths))} -> {item.output}" + ("" if item.hands else " (no hand found)"))
    except Exception as e:  # reported as the batch reports a failed input
        item.error = " ".join(str(e).split()) or type(e).__name__
        log_error(error_line(prefix, first, item.error))
    return item
