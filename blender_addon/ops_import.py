"""File > Import > Hand Capture (.npz): capture files made elsewhere into the scene."""

from __future__ import annotations

import os

import bpy
from bpy_extras.io_utils import ImportHelper

from . import import_capture
from .capture_format import CaptureError


class HANDCAP_OT_import_capture(bpy.types.Operator, ImportHelper):
    """Import handcap capture files as rigged, animated hands with a matching camera"""

    bl_idname = "handcap.import_capture"
    bl_label = "Import Hand Capture"
    bl_options = {"REGISTER", "UNDO", "PRESET"}

    filename_ext = ".npz"
    filter_glob: bpy.props.StringProperty(default="*.npz", options={"HIDDEN"})
    files: bpy.props.CollectionProperty(type=bpy.types.OperatorFileListElement,
                                        options={"HIDDEN", "SKIP_SAVE"})
    directory: bpy.props.StringProperty(subtype="DIR_PATH", options={"HIDDEN", "SKIP_SAVE"})

    def execute(self, context):
        paths = self.selected_paths()
        return import_and_report(self, context, paths)

    def selected_paths(self) -> list:
        names = [f.name for f in self.files if f.name]
        if names and self.directory:
            return [os.path.join(self.directory, name) for name in names]
        return [self.filepath]


def import_and_report(operator, context, paths: list) -> set:
    """Import ``paths`` (all or nothing) and report to the user; an operator return value."""
    try:
        results = import_capture.import_files(paths, context)
    except CaptureError as e:
        operator.report({"ERROR"}, f"Not imported: {e}")
        return {"CANCELLED"}
    for result in results:
        for warning in result.warnings:
            operator.report({"WARNING"}, warning)
    hands = sum(len(r.rigs) for r in results)
    operator.report({"INFO"}, f"Imported {hands} hand(s) from {len(results)} capture file(s)")
    return {"FINISHED"}


class HANDCAP_FH_capture(bpy.types.FileHandler):
    """Drag and drop .npz capture files into the 3D viewport."""

    bl_idname = "HANDCAP_FH_capture"
    bl_label = "Hand Capture"
    bl_import_operator = "handcap.import_capture"
    bl_file_extensions = ".npz"

    @classmethod
    def poll_drop(cls, context):
        return context.area is not None and context.area.type == "VIEW_3D"


def menu_import(self, context):
    self.layout.operator(HANDCAP_OT_import_capture.bl_idname, text="Hand Capture (.npz)")


CLASSES = (HANDCAP_OT_import_capture, HANDCAP_FH_capture)
