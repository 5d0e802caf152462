"""Registration of everything the add-on adds to Blender (imported lazily by __init__)."""

from __future__ import annotations

import bpy

from . import ops_estimate, ops_import, ops_live, ops_regions, ops_retarget, ops_views, panel, preferences, properties
from .retarget import properties as retarget_properties

CLASSES = (*preferences.CLASSES, *properties.CLASSES, *retarget_properties.CLASSES,
           *ops_import.CLASSES, *ops_regions.CLASSES, *ops_views.CLASSES, *ops_estimate.CLASSES, *ops_live.CLASSES,
           *ops_retarget.CLASSES,
           *panel.CLASSES)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    properties.register_properties()
    retarget_properties.register_properties()
    bpy.types.TOPBAR_MT_file_import.append(ops_import.menu_import)


def unregister() -> None:
    ops_estimate.stop_all_runs()
    ops_live.stop_live()
    bpy.types.TOPBAR_MT_file_import.remove(ops_import.menu_import)
    retarget_properties.unregister_properties()
    properties.unregister_properties()
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
