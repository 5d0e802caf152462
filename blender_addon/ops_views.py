"""Several views in the panel: add views (several files at once), remove one, look through a capture's camera.

The views live in ``scene.handcap.views`` (with ``input_mode`` "views" and ``cameras_path``); Estimate
Hand checks them (``views_input``) and runs ``core estimate --views ... --cameras ...``. A multi-view
capture brings one camera per view; Look Through makes one the scene camera at its own render size
(Blender does not change the render size when the scene camera changes).
"""

from __future__ import annotations

import os

import bpy

from . import build_camera


class HANDCAP_OT_view_add(bpy.types.Operator):
    """Add views: photos taken at the same instant, or videos filmed together (select several files)"""

    bl_idname = "handcap.view_add"
    bl_label = "Add Views"
    bl_options = {"REGISTER", "UNDO"}

    filepath: bpy.props.StringProperty(subtype="FILE_PATH", options={"HIDDEN", "SKIP_SAVE"})
    files: bpy.props.CollectionProperty(type=bpy.types.OperatorFileListElement, options={"HIDDEN", "SKIP_SAVE"})
    directory: bpy.props.StringProperty(subtype="DIR_PATH", options={"HIDDEN", "SKIP_SAVE"})

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        settings = context.scene.handcap
        for path in self.selected_paths() or [""]:          # nothing chosen: an empty row to fill in
            settings.views.add().path = path
        settings.input_mode = "views"
        return {"FINISHED"}

    def selected_paths(self) -> list:
        names = [f.name for f in self.files if f.name]
        if names and self.directory:
            return [os.path.join(self.directory, name) for name in names]
        return [self.filepath] if self.filepath and not os.path.isdir(self.filepath) else []


class HANDCAP_OT_view_remove(bpy.types.Operator):
    """Remove this view"""

    bl_idname = "handcap.view_remove"
    bl_label = "Remove View"
    bl_options = {"REGISTER", "UNDO", "INTERNAL"}

    index: bpy.props.IntProperty(default=-1, options={"SKIP_SAVE"})

    def execute(self, context):
        views = context.scene.handcap.views
        if not 0 <= self.index < len(views):
            self.report({"ERROR"}, f"no view {self.index + 1}")
            return {"CANCELLED"}
        views.remove(self.index)
        return {"FINISHED"}


class HANDCAP_OT_look_through(bpy.types.Operator):
    """Make this capture camera the scene camera, with its own render size"""

    bl_idname = "handcap.look_through"
    bl_label = "Look Through"
    bl_options = {"REGISTER", "UNDO", "INTERNAL"}

    camera: bpy.props.StringProperty(name="Camera", options={"SKIP_SAVE"})

    def execute(self, context):
        camera = bpy.data.objects.get(self.camera)
        if camera is None or camera.type != "CAMERA":
            self.report({"ERROR"}, f"no camera {self.camera!r}")
            return {"CANCELLED"}
        build_camera.match_render_to_camera(context.scene, camera)
        for area in (context.screen.areas if context.screen is not None else ()):
            if area.type == "VIEW_3D":
                area.spaces.active.region_3d.view_perspective = "CAMERA"
                area.tag_redraw()
        return {"FINISHED"}


def capture_cameras(scene) -> list:
    """The scene's cameras that the add-on built (they carry their K), by name."""
    return sorted((o for o in scene.objects if o.type == "CAMERA" and build_camera.camera_intrinsics(o) is not None),
                  key=lambda o: o.name)


CLASSES = (HANDCAP_OT_view_add, HANDCAP_OT_view_remove, HANDCAP_OT_look_through)
