"""Hand regions in the panel: add, remove, or take one from what an Image Editor shows.

The regions live in ``scene.handcap.regions`` (pixels of the chosen photo/video, y down from the
top, as the engine's ``--box``); with ``scene.handcap.use_regions`` on, Estimate Hand passes them
to the engine instead of letting it detect hands. The checks and formats are in ``regions``.
"""

from __future__ import annotations

import os

import bpy

from . import regions


def source_size(path: str):
    """(width, height) in pixels of a photo or video, or None when Blender cannot read it.

    An image or movie clip already loaded from that file answers; otherwise the file is loaded
    into a temporary image that is removed again (nothing is left in the blend file).
    """
    if not path or not os.path.isfile(path):
        return None
    for block in (*bpy.data.images, *bpy.data.movieclips):
        if block.filepath and _same_file(bpy.path.abspath(block.filepath, library=block.library), path):
            size = tuple(block.size)
            if min(size) > 0:
                return size
    try:
        image = bpy.data.images.load(path, check_existing=False)
    except RuntimeError:
        return None
    try:
        size = tuple(image.size)
    finally:
        bpy.data.images.remove(image)
    return size if min(size) > 0 else None


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def add_region(settings, box) -> None:
    """Append a region and switch regions on (a new region is meant to be used)."""
    region = settings.regions.add()
    region.x0, region.y0, region.x1, region.y1 = (int(v) for v in box)
    settings.use_regions = True


class HANDCAP_OT_region_add(bpy.types.Operator):
    """Add a hand region (x0, y0, x1, y1 in pixels from the image's top-left corner); without
    coordinates it covers the whole photo, to be edited in the panel"""

    bl_idname = "handcap.region_add"
    bl_label = "Add Region"
    bl_options = {"REGISTER", "UNDO"}

    x0: bpy.props.IntProperty(name="X0", min=0, default=0, options={"SKIP_SAVE"})
    y0: bpy.props.IntProperty(name="Y0", min=0, default=0, options={"SKIP_SAVE"})
    x1: bpy.props.IntProperty(name="X1", min=0, default=0, options={"SKIP_SAVE"})
    y1: bpy.props.IntProperty(name="Y1", min=0, default=0, options={"SKIP_SAVE"})

    def execute(self, context):
        settings = context.scene.handcap
        box = (self.x0, self.y0, self.x1, self.y1)
        if not any(self.properties.is_property_set(name) for name in ("x0", "y0", "x1", "y1")):
            size = source_size(bpy.path.abspath(settings.input_path))
            if size is not None:
                box = (0, 0, *size)
            else:
                self.report({"INFO"}, "Hand region added: type its corners (choose the photo first "
                                      "for a region covering all of it)")
        add_region(settings, box)
        return {"FINISHED"}


class HANDCAP_OT_region_remove(bpy.types.Operator):
    """Remove this hand region (removing the last one turns regions off: detection again)"""

    bl_idname = "handcap.region_remove"
    bl_label = "Remove Region"
    bl_options = {"REGISTER", "UNDO"}

    index: bpy.props.IntProperty(name="Index", min=0, default=0)

    def execute(self, context):
        settings = context.scene.handcap
        if self.index >= len(settings.regions):
            self.report({"ERROR"}, f"Remove Region: there is no region {self.index + 1}")
            return {"CANCELLED"}
        settings.regions.remove(self.index)
        if not len(settings.regions):
            settings.use_regions = False
        return {"FINISHED"}


class HANDCAP_OT_region_from_view(bpy.types.Operator):
    """Add a hand region covering the part of the photo an Image Editor shows: open the photo
    in an Image Editor, zoom and pan until the hand fills it, then click"""

    bl_idname = "handcap.region_from_view"
    bl_label = "From Image Editor"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return image_editor(context) is not None

    def execute(self, context):
        settings = context.scene.handcap
        found = image_editor(context)
        if found is None:
            self.report({"ERROR"}, "From Image Editor: open the photo in an Image Editor first")
            return {"CANCELLED"}
        region, image = found
        image_path = bpy.path.abspath(image.filepath, library=image.library)
        chosen = bpy.path.abspath(settings.input_path)
        if chosen and not _same_file(chosen, image_path):
            self.report({"ERROR"}, f"From Image Editor: the Image Editor shows {image.name!r}, not the "
                                   f"chosen photo {os.path.basename(chosen)!r}")
            return {"CANCELLED"}
        view = region.view2d
        try:
            box = regions.view_box(view.region_to_view(0, 0),
                                   view.region_to_view(region.width, region.height), tuple(image.size))
        except regions.RegionError as e:
            self.report({"ERROR"}, f"From Image Editor: {e}")
            return {"CANCELLED"}
        if not chosen:
            settings.input_path = image.filepath
        add_region(settings, box)
        self.report({"INFO"}, f"Hand region {len(settings.regions)}: {regions.format_box(box)}")
        return {"FINISHED"}


def image_editor(context):
    """(window region, image) of an Image Editor showing a photo or video file, or None: the
    current area first, then one showing the panel's chosen file, then any."""
    screen = context.screen
    if screen is None:
        return None
    areas = [a for a in screen.areas if a.type == "IMAGE_EDITOR"]
    if context.area is not None and context.area in areas:
        areas.remove(context.area)
        areas.insert(0, context.area)
    chosen = bpy.path.abspath(context.scene.handcap.input_path)
    shown = []
    for area in areas:
        image = area.spaces.active.image
        window = next((r for r in area.regions if r.type == "WINDOW"), None)
        if image is None or window is None or image.source not in {"FILE", "MOVIE", "SEQUENCE"} \
                or not image.filepath:
            continue
        if area is context.area or not chosen or \
                _same_file(bpy.path.abspath(image.filepath, library=image.library), chosen):
            return window, image
        shown.append((window, image))
    return shown[0] if shown else None


CLASSES = (HANDCAP_OT_region_add, HANDCAP_OT_region_remove, HANDCAP_OT_region_from_view)
