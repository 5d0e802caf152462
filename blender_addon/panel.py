"""The "Hand Capture" tab in the 3D viewport's sidebar (and its hand regions in the Image Editor's)."""

from __future__ import annotations

import bpy

from .ops_estimate import HANDCAP_OT_cancel_estimate, HANDCAP_OT_estimate
from .ops_import import HANDCAP_OT_import_capture
from .ops_live import HANDCAP_OT_live_start, HANDCAP_OT_live_stop
from .ops_regions import HANDCAP_OT_region_add, HANDCAP_OT_region_from_view, HANDCAP_OT_region_remove
from .ops_views import HANDCAP_OT_look_through, HANDCAP_OT_view_add, HANDCAP_OT_view_remove, capture_cameras
from .ops_retarget import (HANDCAP_OT_retarget, HANDCAP_OT_retarget_detect, HANDCAP_OT_retarget_preset_load,
                           HANDCAP_OT_retarget_preset_save)


class HANDCAP_PT_estimate(bpy.types.Panel):
    """Pick a photo or video, set options, Estimate Hand; or import a capture file."""

    bl_idname = "HANDCAP_PT_estimate"
    bl_label = "Hand Capture"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Hand Capture"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.handcap
        state = context.window_manager.handcap
        draw_input(layout, settings, views=True, enabled=not state.running)
        col = layout.column(align=True)
        col.use_property_split = True
        col.use_property_decorate = False
        col.enabled = not state.running
        col.prop(settings, "hand")
        col.prop(settings, "max_hands")
        col.prop(settings, "smoothing")
        sub = col.column(align=True)
        sub.prop(settings, "frame_start", text="Frames Start")
        sub.prop(settings, "frame_end", text="End")
        sub.prop(settings, "frame_step", text="Step")
        col.prop(settings, "device")
        col.prop(settings, "output_dir")
        if settings.input_mode != "views":            # regions belong to one photo
            draw_regions(layout, settings, enabled=not state.running)
        if state.running:
            layout.progress(factor=state.progress, type="BAR", text=state.status or "working")
            layout.operator(HANDCAP_OT_cancel_estimate.bl_idname, icon="CANCEL")
        else:
            layout.operator(HANDCAP_OT_estimate.bl_idname, icon="HAND")
        layout.separator()
        layout.operator(HANDCAP_OT_import_capture.bl_idname, text="Import Capture File",
                        icon="IMPORT")


class HANDCAP_PT_regions_image(bpy.types.Panel):
    """The same hand regions next to the photo: frame the hand, then From Image Editor."""

    bl_idname = "HANDCAP_PT_regions_image"
    bl_label = "Hand Regions"
    bl_space_type = "IMAGE_EDITOR"
    bl_region_type = "UI"
    bl_category = "Hand Capture"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.handcap
        draw_input(layout, settings)
        draw_regions(layout, settings, enabled=not context.window_manager.handcap.running, title=False)


def draw_input(layout, settings, views: bool = False, enabled: bool = True) -> None:
    """The first row, the photo or video to estimate from, labelled with its property's name
    ("Photo or Video") in the same split as the settings below it, so the row says what it asks for.
    With ``views``: first the One View / Multi-View switch, and in Multi-View the views'
    files (each with its remove button), Add Views, and the cameras file instead."""
    if views:
        row = layout.row()
        row.use_property_split = True
        row.use_property_decorate = False
        row.enabled = enabled
        row.prop(settings, "input_mode", expand=True)
    if not views or settings.input_mode != "views":
        row = layout.row()
        row.use_property_split = True
        row.use_property_decorate = False
        row.prop(settings, "input_path")
        return
    box = layout.box()
    box.enabled = enabled
    for i, view in enumerate(settings.views):
        row = box.row(align=True)
        row.prop(view, "path", text=f"View {i + 1}")
        row.operator(HANDCAP_OT_view_remove.bl_idname, text="", icon="X", emboss=False).index = i
    if len(settings.views) < 2:
        box.label(text="Two or more photos of one instant, or videos filmed together", icon="INFO")
    box.operator(HANDCAP_OT_view_add.bl_idname, icon="ADD")
    row = box.row()
    row.use_property_split = True
    row.use_property_decorate = False
    row.prop(settings, "cameras_path")


def draw_regions(layout, settings, enabled: bool = True, title: bool = True) -> None:
    """The "Hand regions" section: the switch, each box (x0, y0 / x1, y1) with its remove button,
    the add buttons."""
    box = layout.box()
    box.enabled = enabled
    if title:
        box.label(text="Hand Regions", icon="SELECT_SET")
    box.prop(settings, "use_regions")
    col = box.column()
    col.active = settings.use_regions
    if len(settings.regions):
        for i, region in enumerate(settings.regions):
            sub = col.column(align=True)
            row = sub.row()
            row.label(text=f"Region {i + 1}")
            row.operator(HANDCAP_OT_region_remove.bl_idname, text="", icon="X", emboss=False).index = i
            for names in (("x0", "y0"), ("x1", "y1")):
                row = sub.row(align=True)
                for name in names:
                    row.prop(region, name)
        if settings.use_regions:
            col.label(text="Pixels from the image's top-left corner", icon="INFO")
            col.label(text="Boxed hands are right hands unless Hand is Left")
    else:
        col.label(text="No regions: the engine detects the hands")
    row = box.row(align=True)
    row.operator(HANDCAP_OT_region_add.bl_idname, icon="ADD")
    row.operator(HANDCAP_OT_region_from_view.bl_idname, icon="IMAGE_DATA")


class HANDCAP_PT_cameras(bpy.types.Panel):
    """The capture cameras in the scene (one per view of a multi-view capture): look through one,
    at its own render size."""

    bl_idname = "HANDCAP_PT_cameras"
    bl_label = "Capture Cameras"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Hand Capture"
    bl_parent_id = "HANDCAP_PT_estimate"

    @classmethod
    def poll(cls, context):
        return len(capture_cameras(context.scene)) > 1

    def draw(self, context):
        col = self.layout.column(align=True)
        for camera in capture_cameras(context.scene):
            active = context.scene.camera == camera
            col.operator(HANDCAP_OT_look_through.bl_idname, text=camera.name, depress=active,
                         icon="VIEW_CAMERA" if active else "CAMERA_DATA").camera = camera.name


class HANDCAP_PT_live(bpy.types.Panel):
    """Live capture from a camera or a video file: Start, Record, Stop; latency and frame rate."""

    bl_idname = "HANDCAP_PT_live"
    bl_label = "Live Capture"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Hand Capture"
    bl_parent_id = "HANDCAP_PT_estimate"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        settings = context.scene.handcap
        state = context.window_manager.handcap
        row = layout.row()
        row.enabled = not state.live_running
        row.prop(settings, "live_source")
        layout.prop(settings, "live_record", toggle=True, icon="REC")
        if state.live_running:
            layout.label(text=f"{state.live_frames} frames, {state.live_fps:.1f} frames/s, "
                              f"latency {state.live_latency_ms:.0f} ms")
            layout.operator(HANDCAP_OT_live_stop.bl_idname, icon="SNAP_FACE")
        else:
            layout.operator(HANDCAP_OT_live_start.bl_idname, icon="PLAY")


class HANDCAP_UL_retarget_bones(bpy.types.UIList):
    """The mapping: one row per hand joint, with the target bone picked from the target's bones."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0):
        target = context.scene.handcap_retarget.target
        row = layout.row(align=True)
        row.label(text=item.label(), icon="BONE_DATA" if item.bone else "ERROR")
        if target is not None:
            row.prop_search(item, "bone", target.data, "bones", text="")
        else:
            row.prop(item, "bone", text="")


class HANDCAP_PT_retarget(bpy.types.Panel):
    """Put the captured hands on your own character: pick its armature and the capture rig, Retarget."""

    bl_idname = "HANDCAP_PT_retarget"
    bl_label = "Retarget to Your Rig"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Hand Capture"
    bl_parent_id = "HANDCAP_PT_estimate"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        settings = context.scene.handcap_retarget
        col = layout.column(align=True)
        col.use_property_split = True
        col.use_property_decorate = False
        col.prop(settings, "target")
        col.prop(settings, "source")
        col.prop(settings, "both_hands")
        col.prop(settings, "wrist_rotation")
        col.prop(settings, "wrist_location")
        col.prop(settings, "metacarpal_share")
        row = layout.row(align=True)
        row.operator(HANDCAP_OT_retarget_detect.bl_idname, icon="VIEWZOOM")
        row.operator(HANDCAP_OT_retarget_preset_load.bl_idname, text="Load", icon="FILEBROWSER")
        row.operator(HANDCAP_OT_retarget_preset_save.bl_idname, text="Save", icon="FILE_TICK")
        layout.template_list("HANDCAP_UL_retarget_bones", "", settings, "bones", settings, "active_bone", rows=6)
        missing = [row for row in settings.bones if not row.bone and not row.slot.endswith("0")]
        if settings.target is not None and missing:
            layout.label(text=f"{len(missing)} joint(s) without a bone: they stay as they are", icon="INFO")
        layout.operator(HANDCAP_OT_retarget.bl_idname, icon="ARMATURE_DATA")


CLASSES = (HANDCAP_PT_estimate, HANDCAP_PT_cameras, HANDCAP_PT_live, HANDCAP_PT_regions_image, HANDCAP_UL_retarget_bones,
           HANDCAP_PT_retarget)
