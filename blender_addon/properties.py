"""Panel settings (per scene) and the running estimate's state (per window manager)."""

from __future__ import annotations

import bpy

from . import engine


class HANDCAP_Region(bpy.types.PropertyGroup):
    """One hand region: a box in pixels of the chosen photo or video, y down from the top."""

    x0: bpy.props.IntProperty(name="X0", description="Left edge in pixels (from the image's left)",
                              default=0, min=0, subtype="PIXEL")
    y0: bpy.props.IntProperty(name="Y0", description="Top edge in pixels (from the image's top)",
                              default=0, min=0, subtype="PIXEL")
    x1: bpy.props.IntProperty(name="X1", description="Right edge in pixels (from the image's left)",
                              default=0, min=0, subtype="PIXEL")
    y1: bpy.props.IntProperty(name="Y1", description="Bottom edge in pixels (from the image's top)",
                              default=0, min=0, subtype="PIXEL")

    def box(self) -> tuple:
        return (self.x0, self.y0, self.x1, self.y1)


class HANDCAP_View(bpy.types.PropertyGroup):
    """One view of a multi-view estimate: a photo or video of the same scene as the others."""

    path: bpy.props.StringProperty(
        name="View", description="A photo taken at the same instant as the other views, or a video filmed "
                                 "together with them", subtype="FILE_PATH", default="")


class HANDCAP_Settings(bpy.types.PropertyGroup):
    """What the Estimate Hand panel asks the engine for."""

    input_mode: bpy.props.EnumProperty(
        name="Input", description="One photo or video, or several views of the same hands with their cameras",
        items=(("single", "One View", "One photo or video"),
               ("views", "Multi-View", "Two or more photos or videos of the same moment from calibrated "
                                          "cameras, and their cameras file")),
        default="single")
    input_path: bpy.props.StringProperty(
        name="Photo or Video", description="The photo or video to estimate hands from",
        subtype="FILE_PATH", default="")
    views: bpy.props.CollectionProperty(type=HANDCAP_View)
    cameras_path: bpy.props.StringProperty(
        name="Cameras", description=("The views' cameras file (CAMERAS.json from handcap calibrate: one "
                                     "{K, R, t} per view, in the order of the views)"),
        subtype="FILE_PATH", default="")
    hand: bpy.props.EnumProperty(
        name="Hand", description="Which hands to look for",
        items=(("auto", "Auto", "Detect left and right hands"),
               ("left", "Left", "Only left hands"),
               ("right", "Right", "Only right hands")),
        default="auto")
    max_hands: bpy.props.IntProperty(
        name="Maximum Hands", description="At most this many hands (0: every hand of a photo, 2 in a video)",
        default=0, min=0, max=64)
    smoothing: bpy.props.FloatProperty(
        name="Smoothing", description="Temporal smoothing strength for videos (0: none)",
        default=0.5, min=0.0, max=1.0, subtype="FACTOR")
    frame_start: bpy.props.IntProperty(
        name="Start", description="First source frame (0-based)", default=0, min=0)
    frame_end: bpy.props.IntProperty(
        name="End", description="Last source frame (-1: to the end)", default=-1, min=-1)
    frame_step: bpy.props.IntProperty(
        name="Step", description="Use every n-th frame", default=1, min=1)
    device: bpy.props.EnumProperty(
        name="Device", description="Where the engine runs its network",
        items=(("auto", "Auto", "The GPU when there is one, else the CPU"),
               ("cpu", "CPU", "The CPU"),
               ("cuda", "GPU (CUDA)", "An NVIDIA GPU")),
        default="auto")
    output_dir: bpy.props.StringProperty(
        name="Capture Folder", description="Where capture files go (empty: a temporary folder)",
        subtype="DIR_PATH", default="")
    use_regions: bpy.props.BoolProperty(
        name="Use Regions Instead of Detection",
        description=("Estimate one hand in each region below instead of detecting hands "
                     "(the same regions on every frame of a video)"),
        default=False)
    regions: bpy.props.CollectionProperty(type=HANDCAP_Region)
    live_source: bpy.props.StringProperty(
        name="Camera or Video", description="Live capture source: a camera index (0 is the first camera) or a video file",
        default="0")
    live_record: bpy.props.BoolProperty(
        name="Record", description="Key the live hand (at source frame + 1) while on; the keys are written at Stop",
        default=False)

    def view_paths(self) -> list:
        """The views' files, absolute, in the panel's order ('' for a view without a file)."""
        return [bpy.path.abspath(v.path) if v.path else "" for v in self.views]

    def boxes(self) -> tuple:
        """The regions to pass to the engine: all of them when they are in use, else none."""
        return tuple(r.box() for r in self.regions) if self.use_regions else ()

    def options(self) -> engine.EstimateOptions:
        return engine.EstimateOptions(
            hand=self.hand, max_hands=self.max_hands, smoothing=self.smoothing,
            frame_start=self.frame_start, frame_end=self.frame_end, frame_step=self.frame_step,
            device=self.device, boxes=self.boxes())


class HANDCAP_State(bpy.types.PropertyGroup):
    """The estimate in progress, for the panel to draw (not saved in files)."""

    running: bpy.props.BoolProperty(default=False, options={"SKIP_SAVE"})
    cancel_requested: bpy.props.BoolProperty(default=False, options={"SKIP_SAVE"})
    progress: bpy.props.FloatProperty(default=0.0, min=0.0, max=1.0, options={"SKIP_SAVE"})
    status: bpy.props.StringProperty(default="", options={"SKIP_SAVE"})
    live_running: bpy.props.BoolProperty(default=False, options={"SKIP_SAVE"})
    live_stop_requested: bpy.props.BoolProperty(default=False, options={"SKIP_SAVE"})
    live_latency_ms: bpy.props.FloatProperty(default=0.0, options={"SKIP_SAVE"})
    live_fps: bpy.props.FloatProperty(default=0.0, options={"SKIP_SAVE"})
    live_frames: bpy.props.IntProperty(default=0, options={"SKIP_SAVE"})


CLASSES = (HANDCAP_Region, HANDCAP_View, HANDCAP_Settings, HANDCAP_State)   # Region and View before Settings


def register_properties() -> None:
    bpy.types.Scene.handcap = bpy.props.PointerProperty(type=HANDCAP_Settings)
    bpy.types.WindowManager.handcap = bpy.props.PointerProperty(type=HANDCAP_State)


def unregister_properties() -> None:
    del bpy.types.WindowManager.handcap
    del bpy.types.Scene.handcap
