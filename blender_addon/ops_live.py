"""Live Capture: a camera (or a video file standing in for one) drives a hand rig in the viewport.

``LiveSession`` does the work and has no timer of its own, so a script or a test can drive it:
``start`` launches ``handcap live`` (``live_stream``), ``step`` handles the records that have
arrived (builds the rigs from the engine's rig file with the ordinary capture import, poses them,
remembers the frames to key while Record is on), ``stop`` ends the engine and keys what was
recorded in bulk (``keyframes.key_rig``). The record of source frame i is keyed at Blender frame
i + 1, as an imported capture is. The modal operator is a timer that calls ``step``.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import bpy
import numpy as np

from . import build_armature, engine, keyframes, live_pose, live_stream, naming, rig_math
from .capture_format import load_capture
from .import_capture import build_capture
from .preferences import engine_python_preference
from .regions import box_arguments

_SESSION = None          # the one live session (a second Start is refused while it runs)


class LiveSession:
    """One live capture: the engine process, the rigs it drives, the frames recorded."""

    def __init__(self, source: str, python: str, extra: list = (), smoothing: float = 0.5):
        self.source, self.python, self.extra = str(source), python, list(extra)
        self.folder = tempfile.mkdtemp(prefix="handcap-live-")
        self.stream = None
        self.rigs = {}               # side -> dict(armature, mesh, bones, rest, wrist, smoother)
        self.recorded = {}           # side -> {frame index: (quats (J, 4), location (3,), pose (J, 3))}
        self.smoothing = smoothing
        self.collection = None
        self.last_frame = -1

    # --- life cycle ---------------------------------------------------------------------

    def start(self) -> "LiveSession":
        rig = os.path.join(self.folder, "rig.npz")
        self.stream = live_stream.start_live(self.python, self.source, rig, self.extra)
        return self

    def step(self, context) -> list:
        """Handle the records that arrived (never blocks); returns them."""
        records = self.stream.poll()
        state = context.window_manager.handcap
        newest = max((i for i, r in enumerate(records) if r.get("type") == "frame"), default=-1)
        for i, record in enumerate(records):
            if record.get("type") == "start" and record.get("rig"):
                self._build_rigs(context, record["rig"])
            elif record.get("type") == "frame":        # every record smoothed (and recorded), the newest shown
                self._pose(record, context.scene.handcap.live_record, show=i == newest)
        state.live_latency_ms = self.stream.latency_ms
        state.live_fps = self.stream.fps
        state.live_frames = self.stream.frames
        return records

    def stop(self, context) -> list:
        """End the engine (its last records are still shown), key the recorded frames; returns the actions."""
        self.stream.stop()
        self.step(context)
        actions = self._key_recorded()
        shutil.rmtree(self.folder, ignore_errors=True)
        return actions

    # --- rigs ---------------------------------------------------------------------------

    def _build_rigs(self, context, rig_path: str) -> None:
        capture = load_capture(rig_path)
        result = build_capture(capture, context, rig_path)
        result.collection.name = f"Live {self.source if self.source.isdigit() else os.path.basename(self.source)}"
        self.collection = result.collection
        for track, (armature, mesh) in zip(capture.tracks, result.rigs):
            for obj in (armature, mesh, mesh.data.shape_keys):
                if obj is not None and obj.animation_data is not None:
                    action = obj.animation_data.action
                    obj.animation_data_clear()
                    if action is not None and action.users == 0:
                        bpy.data.actions.remove(action)
            armature.hide_viewport = mesh.hide_viewport = True          # shown once its side is seen
            self.rigs[track.side] = dict(
                armature=armature, mesh=mesh, bones=[b.name for b in armature.data.bones],
                rest=build_armature.bone_rest_rotations(armature), wrist=np.asarray(track.rest_joints[0], np.float64),
                smoother=live_pose.CausalSmoother(self.smoothing))

    def _pose(self, record: dict, recording: bool, show: bool = True) -> None:
        self.last_frame = int(record.get("frame", self.last_frame + 1))
        for side, hand in live_pose.best_hands(record).items():
            rig = self.rigs.get(side)
            if rig is None:
                continue
            quats, location = rig["smoother"](*live_pose.pose_channels(hand, rig["rest"], rig["wrist"]), record.get("time"))
            if recording:
                self.recorded.setdefault(side, {})[self.last_frame] = (quats, location, np.asarray(hand["pose"]))
            if not show:
                continue
            armature = rig["armature"]
            armature.hide_viewport = rig["mesh"].hide_viewport = False
            bones = armature.pose.bones
            for name, q in zip(rig["bones"], quats):
                bones[name].rotation_mode = "QUATERNION"
                bones[name].rotation_quaternion = q.tolist()
            bones[rig["bones"][0]].location = location.tolist()

    def _key_recorded(self) -> list:
        """One action per rig with the recorded frames (Blender frame = source frame + 1)."""
        actions = []
        for side, frames in self.recorded.items():
            rig = self.rigs[side]
            order = sorted(frames)
            quats = rig_math.align_hemisphere(np.stack([frames[f][0] for f in order]))
            locations = np.stack([frames[f][1] for f in order])
            mesh = rig["mesh"]
            key_names = values = None
            if mesh.data.shape_keys is not None:
                key_names = naming.corrective_names(rig["bones"])
                values = rig_math.corrective_features(np.stack([frames[f][2] for f in order]))
            actions.append(keyframes.key_rig(f"{rig['armature'].name} live", rig["armature"], rig["bones"],
                                             np.asarray(order, np.float64) + 1.0, quats, locations,
                                             mesh, key_names, values))
        self.recorded = {}
        return actions


def engine_arguments(settings) -> list:
    """``handcap live`` options from the panel's settings (the defaults pass nothing); a video file
    plays at its frame rate, as a camera would (``--as-camera``). Maximum Hands 0 ("every hand",
    the panel's default) means the engine's own default for live, which takes no 0."""
    options = settings.options()
    args = [] if settings.live_source.strip().isdigit() else ["--as-camera"]
    args += [] if options.device == "auto" else ["--device", options.device]
    args += [] if options.hand == "auto" else ["--hand", options.hand]
    args += [] if options.max_hands == 0 else ["--max-hands", str(options.max_hands)]
    return args + box_arguments(options.boxes)


class HANDCAP_OT_live_start(bpy.types.Operator):
    """Capture hands live from a camera (or a video file) onto a rig in the viewport"""

    bl_idname = "handcap.live_start"
    bl_label = "Start Live"
    _timer = None
    _interval = 1.0 / 60.0

    @classmethod
    def poll(cls, context):
        return _SESSION is None

    def invoke(self, context, event):
        global _SESSION
        settings = context.scene.handcap
        try:
            python = engine.find_engine_python(engine_python_preference(context))
            source = settings.live_source.strip()
            source = source if source.isdigit() else bpy.path.abspath(source)
            _SESSION = LiveSession(source, python, engine_arguments(settings), settings.smoothing).start()
        except engine.EngineError as e:
            self.report({"ERROR"}, f"Live Capture: {e}")
            return {"CANCELLED"}
        state = context.window_manager.handcap
        state.live_running, state.live_stop_requested = True, False
        wm = context.window_manager
        self._interval = live_pose.timer_interval(0.0)
        if context.window is not None:
            self._timer = wm.event_timer_add(self._interval, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        state = context.window_manager.handcap
        if (event.type == "ESC" and event.value == "PRESS") or state.live_stop_requested:
            return self._end(context)
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        _SESSION.step(context)
        if _SESSION.stream.finished:
            return self._end(context)
        self._follow_rate(context)
        for area in (context.screen.areas if context.screen is not None else ()):
            if area.type == "VIEW_3D":
                area.tag_redraw()
        return {"PASS_THROUGH"}

    def _follow_rate(self, context) -> None:
        """Re-time the timer when the engine's rate has moved it by more than a fifth (live_pose.timer_interval)."""
        interval = live_pose.timer_interval(_SESSION.stream.fps)
        if self._timer is None or abs(interval - self._interval) <= 0.2 * self._interval:
            return
        wm = context.window_manager
        wm.event_timer_remove(self._timer)
        self._interval, self._timer = interval, wm.event_timer_add(interval, window=context.window)

    def cancel(self, context):
        self._end(context)

    def _end(self, context) -> set:
        global _SESSION
        session, _SESSION = _SESSION, None
        if self._timer is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None
        state = context.window_manager.handcap
        state.live_running, state.live_stop_requested = False, False
        if session is not None:
            actions = session.stop(context)
            if session.stream.error:
                self.report({"ERROR"}, f"Live Capture: {session.stream.error}")
            elif actions:
                self.report({"INFO"}, f"Live Capture: recorded {len(actions)} take(s)")
        return {"FINISHED"}


class HANDCAP_OT_live_stop(bpy.types.Operator):
    """Stop the live capture (the engine ends; recorded frames are keyed)"""

    bl_idname = "handcap.live_stop"
    bl_label = "Stop Live"
    bl_options = {"INTERNAL"}

    @classmethod
    def poll(cls, context):
        return context.window_manager.handcap.live_running

    def execute(self, context):
        context.window_manager.handcap.live_stop_requested = True
        return {"FINISHED"}


def stop_live(context=None) -> None:
    """Stop a running live session (the add-on is being disabled)."""
    global _SESSION
    if _SESSION is not None:
        _SESSION.stream.stop(grace=1.0)
        shutil.rmtree(_SESSION.folder, ignore_errors=True)
        _SESSION = None


CLASSES = (HANDCAP_OT_live_start, HANDCAP_OT_live_stop)
