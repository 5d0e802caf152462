"""Retarget operators: Retarget, Detect Bones, Save/Load Preset (the Hand Capture panel's Retarget box)."""

from __future__ import annotations

import bpy
from bpy_extras.io_utils import ExportHelper, ImportHelper

from .retarget import name_mapping, retarget_rig, rig_data


class HANDCAP_OT_retarget(bpy.types.Operator):
    """Key the capture rig's hand animation onto the target armature's finger bones (one NLA take)"""

    bl_idname = "handcap.retarget"
    bl_label = "Retarget"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        settings = context.scene.handcap_retarget
        return settings.target is not None and settings.source is not None

    def execute(self, context):
        settings = context.scene.handcap_retarget
        if context.mode != "OBJECT":
            bpy.ops.object.mode_set(mode="OBJECT")
        sources = (retarget_rig.capture_rigs_beside(settings.source) if settings.both_hands
                   else [settings.source])
        try:
            report = retarget_rig.retarget(sources, settings.target, settings.mapping(), settings.options())
        except ValueError as e:
            self.report({"ERROR"}, f"Not retargeted: {e}")
            return {"CANCELLED"}
        for line in report.unmatched + report.warnings:
            self.report({"WARNING"}, line)
        self.report({"INFO"}, report.summary())
        return {"FINISHED"}


class HANDCAP_OT_retarget_detect(bpy.types.Operator):
    """Fill the bone list from the target armature's bone names"""

    bl_idname = "handcap.retarget_detect"
    bl_label = "Detect Bones"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return context.scene.handcap_retarget.target is not None

    def execute(self, context):
        settings = context.scene.handcap_retarget
        mapping = retarget_rig.detect(settings.target)
        settings.set_mapping(mapping)
        found = [s for s in name_mapping.SIDES if s in mapping.sides_found()]
        if not found:
            self.report({"WARNING"}, f"{settings.target.name}: no hand bones recognised; fill the list by hand")
        else:
            for side in found:
                for line in retarget_rig.unmatched_lines(mapping, side):
                    self.report({"WARNING"}, line)
            self.report({"INFO"}, f"Hands found: {', '.join(found)}")
        return {"FINISHED"}


class HANDCAP_OT_retarget_preset_save(bpy.types.Operator, ExportHelper):
    """Save the bone list as a preset file (JSON)"""

    bl_idname = "handcap.retarget_preset_save"
    bl_label = "Save Retarget Preset"
    filename_ext = ".json"
    filter_glob: bpy.props.StringProperty(default="*.json", options={"HIDDEN"})

    def execute(self, context):
        try:
            path = name_mapping.save_preset(context.scene.handcap_retarget.mapping(), self.filepath)
        except OSError as e:
            self.report({"ERROR"}, f"Not saved: {e}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Saved {path}")
        return {"FINISHED"}


class HANDCAP_OT_retarget_preset_load(bpy.types.Operator, ImportHelper):
    """Load a bone list from a preset file (JSON)"""

    bl_idname = "handcap.retarget_preset_load"
    bl_label = "Load Retarget Preset"
    bl_options = {"REGISTER", "UNDO"}
    filename_ext = ".json"
    filter_glob: bpy.props.StringProperty(default="*.json", options={"HIDDEN"})

    def execute(self, context):
        settings = context.scene.handcap_retarget
        try:
            mapping = name_mapping.load_preset(self.filepath)
        except (OSError, ValueError) as e:
            self.report({"ERROR"}, f"Not loaded: {e}")
            return {"CANCELLED"}
        settings.set_mapping(mapping)
        if settings.target is not None:
            for problem in name_mapping.check_mapping(mapping, rig_data.bone_infos(settings.target)):
                self.report({"WARNING"}, problem)
        self.report({"INFO"}, f"Loaded {self.filepath}")
        return {"FINISHED"}


CLASSES = (HANDCAP_OT_retarget, HANDCAP_OT_retarget_detect, HANDCAP_OT_retarget_preset_save,
           HANDCAP_OT_retarget_preset_load)
