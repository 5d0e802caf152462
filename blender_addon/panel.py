"""The "Hand Capture" tab in the 3D viewport's sidebar."""

from __future__ import annotations

import bpy

from .ops_estimate import HANDCAP_OT_cancel_estimate, HANDCAP_OT_estimate
from .ops_import import HANDCAP_OT_import_capture


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
        if state.running:
            layout.progress(factor=state.progress, type="BAR", text=state.status or "working")
            layout.operator(HANDCAP_OT_cancel_estimate.bl_idname, icon="CANCEL")
        else:
            layout.operator(HANDCAP_OT_estimate.bl_idname, icon="HAND")
        layout.separator()
        layout.operator(HANDCAP_OT_import_capture.bl_idname, text="Import Capture File",
                        icon="IMPORT")


CLASSES = (HANDCAP_PT_estimate,)
