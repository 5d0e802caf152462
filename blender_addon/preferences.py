"""Add-on preferences: where the engine's Python is (keyed by the package, as extensions need)."""

from __future__ import annotations

import bpy

from . import engine


class HANDCAP_AddonPreferences(bpy.types.AddonPreferences):
    """The engine's Python interpreter; empty means auto-detect."""

    bl_idname = __package__

    engine_python: bpy.props.StringProperty(
        name="Engine Python",
        description=("Python interpreter that has handcap (torch) installed; empty: "
                     f"${engine.ENV_PYTHON}, else the 'handcap' command on PATH"),
        subtype="FILE_PATH",
        default="",
    )

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "engine_python")
        try:
            found = engine.find_engine_python(self.engine_python)
            layout.label(text=f"Engine: {found}", icon="CHECKMARK")
        except engine.EngineError as e:
            layout.label(text=str(e), icon="ERROR")


def engine_python_preference(context) -> str:
    """The preference's value ('' when the add-on is registered without being installed)."""
    addon = context.preferences.addons.get(__package__)
    return addon.preferences.engine_python if addon is not None else ""
