"""Add-on preferences: the engine's Python, Install Engine / Check Engine (keyed by the package, as
extensions need). The work is in ``engine_install`` (no bpy); these operators drive it."""

from __future__ import annotations

import os

import bpy

from . import engine, engine_install, engine_packages

_JOB = None               # the Install Engine running or last run (engine_install.InstallJob)
_REPORT = []              # Check Engine's last report, as lines
PRINT_EVERY_S = 5.0       # seconds between progress lines of a headless Install Engine


def engine_folder() -> str:
    """Where the private engine venv goes: the extension's user folder (kept across updates)."""
    try:
        return bpy.utils.extension_path_user(__package__, path="engine", create=False)
    except (ValueError, AttributeError):         # registered as a plain add-on (tests, Blender < 4.2)
        return os.path.join(bpy.utils.user_resource("SCRIPTS"), "handcap_engine", "engine")


class HANDCAP_AddonPreferences(bpy.types.AddonPreferences):
    """The engine's Python interpreter; empty means auto-detect."""

    bl_idname = __package__

    engine_python: bpy.props.StringProperty(
        name="Engine Python",
        description=("Python interpreter that has handcap (torch) installed; empty: "
                     f"${engine.ENV_PYTHON}, else the 'handcap' command on PATH. Install Engine sets it"),
        subtype="FILE_PATH",
        default="",
    )
    local_packages: bpy.props.StringProperty(
        name="Local Wheels",
        description=("A folder of wheels (or one handcap wheel) to install from instead of the package index; "
                     "needed when Blender is offline"),
        subtype="FILE_PATH",
        default="",
    )
    torch_build: bpy.props.EnumProperty(
        name="Torch",
        description="Which PyTorch build Install Engine takes",
        items=engine_packages.TORCH_CHOICES,
        default="AUTO",
    )

    def cpu_only(self) -> bool:
        """Whether Install Engine takes PyTorch's CPU-only wheels (the Torch setting, on this machine)."""
        return engine_packages.wants_cpu_index(self.torch_build)

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "engine_python")
        try:
            found = engine.find_engine_python(self.engine_python)
            layout.label(text=f"Engine: {found}", icon="CHECKMARK")
        except engine.EngineError as e:
            layout.label(text=str(e), icon="ERROR")
        box = layout.box()
        box.label(text="Engine setup", icon="PREFERENCES")
        if not bpy.app.online_access:
            box.label(text="Blender is offline (System > Allow Online Access): install from local wheels", icon="INFO")
        box.prop(self, "local_packages")
        box.prop(self, "torch_build")
        cpu_only = self.cpu_only()
        box.label(text=f"Installs handcap with torch 2.13 ({'CPU only' if cpu_only else 'package index build'}) and "
                       f"OpenCV into a private environment: {engine_packages.size_text(cpu_only)}")
        row = box.row(align=True)
        if _JOB is not None and _JOB.state == "running":
            row.progress(factor=_JOB.progress, type="BAR", text=_JOB.message[:90] or "installing")
            row.operator(HANDCAP_OT_cancel_install.bl_idname, text="", icon="CANCEL")
        else:
            row.operator(HANDCAP_OT_install_engine.bl_idname, icon="IMPORT")
            row.operator(HANDCAP_OT_check_engine.bl_idname, icon="CHECKMARK")
        if _JOB is not None:
            if _JOB.state != "running":
                box.label(text=_JOB.message[:200], icon="CHECKMARK" if _JOB.state == "done" else "ERROR")
            box.operator(HANDCAP_OT_open_install_log.bl_idname, icon="TEXT")
        for line in _REPORT:
            box.label(text=line)


def engine_python_preference(context) -> str:
    """The preference's value ('' when the add-on is registered without being installed)."""
    addon = context.preferences.addons.get(__package__)
    return addon.preferences.engine_python if addon is not None else ""


def install_job(prefs) -> engine_install.InstallJob:
    """The job Install Engine starts, from the bundled wheel and the Local Wheels setting."""
    local = bpy.path.abspath(prefs.local_packages) if prefs.local_packages else ""
    wheels = engine_install.bundled_wheels(os.path.dirname(os.path.abspath(__file__)))
    links = []
    if local and os.path.isdir(local):
        links = [local]
        wheels = wheels or sorted(os.path.join(local, n) for n in os.listdir(local) if n.startswith("handcap-"))
    elif local:
        wheels = [local]
    target = engine_folder()
    return engine_install.InstallJob(target, wheels, links, offline=not bpy.app.online_access,
                                     log_path=os.path.join(os.path.dirname(target), "install_engine.log"),
                                     cpu_only=prefs.cpu_only())


class HANDCAP_OT_install_engine(bpy.types.Operator):
    """Create a private Python environment for the engine and install handcap into it"""

    bl_idname = "handcap.install_engine"
    bl_label = "Install Engine"
    _timer = None

    @classmethod
    def poll(cls, context):
        return _JOB is None or _JOB.state != "running"

    def execute(self, context):
        global _JOB
        prefs = context.preferences.addons[__package__].preferences
        try:
            _JOB = install_job(prefs)
        except engine.EngineError as e:
            self.report({"ERROR"}, f"Install Engine: {e}")
            return {"CANCELLED"}
        if context.window is None or bpy.app.background:      # no UI: to the end, progress on the console
            _JOB.start()
            said = ""
            while _JOB.wait(PRINT_EVERY_S).state == "running":
                line = f"Install Engine: {_JOB.progress:.0%} {_JOB.message}"
                if line != said:                     # a line for each new step, not one every few seconds
                    print(line, flush=True)
                    said = line
            self._done(context, _JOB)
            return {"FINISHED"} if _JOB.state == "done" else {"CANCELLED"}
        _JOB.start()
        self._timer = context.window_manager.event_timer_add(0.5, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        for area in (context.screen.areas if context.screen is not None else ()):
            area.tag_redraw()
        if _JOB.state == "running":
            return {"PASS_THROUGH"}
        context.window_manager.event_timer_remove(self._timer)
        self._done(context, _JOB)
        return {"FINISHED"}

    def _done(self, context, job) -> None:
        if job.state == "done":
            context.preferences.addons[__package__].preferences.engine_python = job.python
            self.report({"INFO"}, f"Install Engine: {job.message}")
        else:
            self.report({"ERROR"} if job.state == "failed" else {"WARNING"}, f"Install Engine: {job.message}")


class HANDCAP_OT_cancel_install(bpy.types.Operator):
    """Stop the engine install (the previous engine, if any, stays)"""

    bl_idname = "handcap.cancel_install"
    bl_label = "Cancel Install"
    bl_options = {"INTERNAL"}

    def execute(self, context):
        if _JOB is not None:
            _JOB.cancel()
        return {"FINISHED"}


class HANDCAP_OT_check_engine(bpy.types.Operator):
    """Run the engine's self-test: versions, CPU/GPU, one estimate on the bundled photo"""

    bl_idname = "handcap.check_engine"
    bl_label = "Check Engine"

    def execute(self, context):
        global _REPORT
        try:
            python = engine.find_engine_python(engine_python_preference(context))
            report = engine_install.check_engine(python)
        except engine.EngineError as e:
            _REPORT = [f"Problem: {e}"]
            self.report({"ERROR"}, f"Check Engine: {e}")
            return {"CANCELLED"}
        _REPORT = engine_install.report_lines(report)
        self.report({"INFO"} if report.get("ok") else {"WARNING"}, "Check Engine: " + "; ".join(_REPORT))
        return {"FINISHED"}


class HANDCAP_OT_open_install_log(bpy.types.Operator):
    """Open the engine install's log"""

    bl_idname = "handcap.open_install_log"
    bl_label = "Open Install Log"
    bl_options = {"INTERNAL"}

    def execute(self, context):
        if _JOB is None or not os.path.isfile(_JOB.log_path):
            self.report({"WARNING"}, "no install log yet")
            return {"CANCELLED"}
        bpy.ops.wm.path_open(filepath=_JOB.log_path)
        return {"FINISHED"}


CLASSES = (HANDCAP_AddonPreferences, HANDCAP_OT_install_engine, HANDCAP_OT_cancel_install,
           HANDCAP_OT_check_engine, HANDCAP_OT_open_install_log)
