"""The capture camera: intrinsics and image size from K, the source photo/video behind it.

The camera object sits at the world origin with identity rotation: Blender cameras look
down -Z with +Y up, which is the OpenCV camera seen through ``rig_math.CV_TO_BLENDER``.
An import into a scene with something in the camera's view moves camera and hands down
together, below the scene's objects (``clear_view``), so that the photo shows behind the hands.
"""

from __future__ import annotations

import os

import bpy
import numpy as np

from . import camera_math

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


def new_camera_object(name: str, collection: bpy.types.Collection, K: np.ndarray,
                      image_size) -> bpy.types.Object:
    """A camera object matching K (3, 3) pixels on an image of (W, H) pixels."""
    settings = camera_math.camera_settings(K, image_size)
    data = bpy.data.cameras.new(name)
    data.sensor_fit = "HORIZONTAL"
    data.sensor_width = settings.sensor_width_mm
    data.lens = settings.lens_mm
    data.shift_x = settings.shift_x
    data.shift_y = settings.shift_y
    data.clip_start = 0.01
    data.clip_end = 100.0
    obj = bpy.data.objects.new(name, data)
    collection.objects.link(obj)
    return obj


def match_render_settings(scene: bpy.types.Scene, K: np.ndarray, image_size) -> None:
    """Scene resolution and pixel aspect of the source image, at 100 %."""
    settings = camera_math.camera_settings(K, image_size)
    scene.render.resolution_x, scene.render.resolution_y = settings.resolution
    scene.render.resolution_percentage = 100
    scene.render.pixel_aspect_x, scene.render.pixel_aspect_y = settings.pixel_aspect


def is_video(path: str) -> bool:
    """True for a path with a video file extension."""
    return os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS


def add_background(camera: bpy.types.Object, source_path: str) -> list:
    """Show the source photo (an Image) or video (a MovieClip) behind the camera view.

    Video frame 0 plays at scene frame 1, as the keyframes do (frame = source index + 1).
    Returns warnings (a missing or unreadable source is not an error: the hand still builds).
    """
    if not source_path:
        return []
    if not os.path.isfile(source_path):
        return [f"source {source_path!r} not found: the camera has no background"]
    data = camera.data
    background = data.background_images.new()
    try:
        if is_video(source_path):
            clip = bpy.data.movieclips.load(source_path, check_existing=True)
            clip.frame_start = 1
            background.source = "MOVIE_CLIP"
            background.clip = clip
            background.use_camera_clip = False
        else:
            background.source = "IMAGE"
            background.image = bpy.data.images.load(source_path, check_existing=True)
    except RuntimeError as e:
        data.background_images.remove(background)
        return [f"cannot load source {source_path!r} as a background: {e}"]
    background.alpha = 1.0
    background.display_depth = "BACK"
    background.frame_method = "STRETCH"
    data.show_background_images = True
    return []
