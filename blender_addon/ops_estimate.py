"""Estimate Hand: run the engine on a photo/video in the background, then build the hand.

With the panel's Multi-View, it runs the engine on every view and their cameras file at once
(``engine.estimate_views_command``), after ``views_input`` has checked them, and builds every camera.

From the panel the operator is modal: a timer polls the engine process (``engine.EngineRun``)
so Blender stays responsive; progress shows in the progress bar, the status bar and the
panel; ESC or the panel's Cancel button stops the engine and removes the files it had started.
An engine that crashes, is killed or hangs (``engine.STALL_TIMEOUT``) leaves the scene as it was
and the reason is reported; "no hand found" (exit code 3) is a warning, not an error. Called from
a script or in background mode it runs synchronously (``execute``). The import is one undo step.
"""

from __future__ import annotations

import os
import tempfile

import bpy

from . import engine, output_files, regions, views_input
from .ops_import import import_and_report
from .ops_regions import source_size
from .preferences import engine_python_preference

_ACTIVE_RUNS = set()          # runs to stop if the add-on is disabled mid-estimate


class HANDCAP_OT_estimate(bpy.types.Operator):
    """Estimate the hands in a photo or video, or in several views with their cameras: rigged, animated hands"""

    bl_idname = "handcap.estimate"
    bl_label = "Estimate Hand"
    bl_options = {"REGISTER", "UNDO"}

    input_path: bpy.props.StringProperty(
        name="Photo or Video", description="Overrides the panel's input when set",
        subtype="FILE_PATH", default="", options={"SKIP_SAVE"})

    _run = None
    _timer = None

    @classmethod
    def poll(cls, context):
        return not context.window_manager.handcap.running

    def invoke(self, context, event):
        if context.window is None:                    # no UI: run to completion
            return self.execute(context)
        if not self._start(context):
            return {"CANCELLED"}
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.modal_handler_add(self)
        wm.progress_begin(0, 100)
        self._show(context)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        state = context.window_manager.handcap
        if (event.type == "ESC" and event.value == "PRESS") or state.cancel_requested:
            self._run.cancel()
        elif event.type != "TIMER":
            return {"PASS_THROUGH"}
        self._run.poll()
        self._show(context)
        if not self._run.finished:
            return {"PASS_THROUGH"}
        self._stop_ui(context)
        return self._finish(context)

    def execute(self, context):
        if not self._start(context):
            return {"CANCELLED"}
        wm = context.window_manager
        wm.progress_begin(0, 100)

        def on_event(event, run):
            wm.progress_update(int(100 * run.progress.fraction))
            print(f"Estimate Hand: {run.progress.text()}", flush=True)

        try:
            self._run.wait(on_event=on_event)
        finally:
            wm.progress_end()
        return self._finish(context)

    def cancel(self, context):
        """Blender is closing the operator (file load, quit): stop the engine too."""
        if self._run is not None and not self._run.finished:
            self._run.cancel()
        _ACTIVE_RUNS.discard(self._run)
        state = context.window_manager.handcap
        state.running, state.cancel_requested, state.status = False, False, ""
        self._stop_ui(context)

    # --- steps ---------------------------------------------------------------------------

    def _start(self, context) -> bool:
        settings = context.scene.handcap
        views = uses_views(self.input_path, context.scene.handcap)
        path = bpy.path.abspath(self.input_path or settings.input_path)
        try:
            options = settings.options()
            if views:                                 # checked before anything is launched
                views_input.check_views(settings.view_paths(), bpy.path.abspath(settings.cameras_path))
            else:
                if not path:
                    raise engine.EngineError("choose a photo or video first")
                if not os.path.isfile(path):
                    raise engine.EngineError(f"{path}: no such file")
                if settings.use_regions:
                    options.boxes = tuple(regions.check_boxes(options.boxes, source_size(path), required=True))
            python = engine.find_engine_python(engine_python_preference(context))
            out_dir = (bpy.path.abspath(settings.output_dir) if settings.output_dir
                       else tempfile.mkdtemp(prefix="handcap-"))
            self._made_dir = None if settings.output_dir else out_dir
            os.makedirs(out_dir, exist_ok=True)
            if views:
                command = engine.estimate_views_command(python, settings.view_paths(),
                                                        bpy.path.abspath(settings.cameras_path), out_dir, options)
            else:
                command = engine.estimate_command(python, path, out_dir, options)
            self._run = engine.EngineRun(command, cwd=out_dir, out_dir=out_dir,
                                         stall_timeout=engine.STALL_TIMEOUT).start()
        except (engine.EngineError, regions.RegionError, views_input.ViewsError, OSError) as e:
            self.report({"ERROR"}, f"Estimate Hand: {e}")
            return False
        _ACTIVE_RUNS.add(self._run)
        state = context.window_manager.handcap
        state.running, state.cancel_requested, state.progress = True, False, 0.0
        state.status = "starting the engine"
        return True

    def _finish(self, context) -> set:
        run = self._run
        _ACTIVE_RUNS.discard(run)
        state = context.window_manager.handcap
        state.running, state.cancel_requested, state.status = False, False, ""
        made = getattr(self, "_made_dir", None)
        if (run.cancelled or run.error) and made:
            output_files.remove_if_empty(made)         # the run removed its files; the folder was ours
        if run.cancelled:
            self.report({"WARNING"}, "Estimate Hand: cancelled")
            return {"CANCELLED"}
        if run.error:
            self.report({"ERROR"}, f"Estimate Hand: {run.error}")
            return {"CANCELLED"}
        if run.no_hand:                                  # read fine, nothing to build: the scene stays as it is
            settings = context.scene.handcap
            if uses_views(self.input_path, settings):
                source = ", ".join(os.path.basename(p) for p in settings.view_paths())
            else:
                source = os.path.basename(bpy.path.abspath(self.input_path or settings.input_path))
            self.report({"WARNING"}, f"Estimate Hand: no hand found in {source}")
            return {"CANCELLED"}
        return import_and_report(self, context, run.outputs)

    def _show(self, context) -> None:
        """Progress into the window manager's bar, the status bar and the panel."""
        progress = self._run.progress
        state = context.window_manager.handcap
        state.progress, state.status = progress.fraction, progress.text()
        context.window_manager.progress_update(int(100 * progress.fraction))
        if context.workspace is not None:
            context.workspace.status_text_set(f"Hand Capture: {state.status} (Esc to cancel)")
        _redraw_panels(context)

    def _stop_ui(self, context) -> None:
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
        wm.progress_end()
        if context.workspace is not None:
            context.workspace.status_text_set(None)
        _redraw_panels(context)


class HANDCAP_OT_cancel_estimate(bpy.types.Operator):
    """Stop the running hand estimate"""

    bl_idname = "handcap.cancel_estimate"
    bl_label = "Cancel"
    bl_options = {"INTERNAL"}

    @classmethod
    def poll(cls, context):
        return context.window_manager.handcap.running

    def execute(self, context):
        context.window_manager.handcap.cancel_requested = True
        return {"FINISHED"}


def uses_views(input_path: str, settings) -> bool:
    """Several views: the panel's Multi-View mode, unless the operator call names one input."""
    return not input_path and settings.input_mode == "views"


def _redraw_panels(context) -> None:
    screen = context.screen
    for area in (screen.areas if screen is not None else ()):
        if area.type == "VIEW_3D":
            area.tag_redraw()


def stop_all_runs() -> None:
    """Stop engines still running (the add-on is being disabled)."""
    for run in list(_ACTIVE_RUNS):
        run.cancel()
    _ACTIVE_RUNS.clear()


CLASSES = (HANDCAP_OT_estimate, HANDCAP_OT_cancel_estimate)
