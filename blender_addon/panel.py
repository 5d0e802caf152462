"""The "Hand Capture" tab in the 3D viewport's sidebar (and its hand regions in the Image Editor's)."""

from __future__ import annotations

import bpy

from .ops_estimate import HANDCAP_OT_cancel_estimate, HANDCAP_OT_estimate
from .ops_import import HANDCAP_OT_import_capture
from .ops_regions import HANDCAP_OT_region_add, HANDCAP_OT_region_from_view, HANDCAP_OT_region_remove


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
        layout.prop(settings, "input_path", text="")
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
        layout.prop(settings, "input_path", text="")
        draw_regions(layout, settings, enabled=not context.window_manager.handcap.running, title=False)


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


CLASSES = (HANDCAP_PT_estimate, HANDCAP_PT_regions_image)
