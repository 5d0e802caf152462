"""The capture camera: intrinsics and image size from K, the source photo/video behind it.

The camera object sits at the world origin with identity rotation: Blender cameras look
down -Z with +Y up, which is the OpenCV camera seen through ``rig_math.CV_TO_BLENDER``.
An import into a scene with something in the camera's view moves camera and hands down
together, below the scene's objects (``clear_view``), so that the photo shows behind the hands.

A multi-view capture's other cameras are placed relative to this one (``camera_math.view_from_first``).
Every camera keeps its K and image size as custom properties (``K_PROPERTY``, ``SIZE_PROPERTY``) so that
looking through it can set the scene's render size to its own (``match_render_to_camera``).
"""

from __future__ import annotations

import os

import bpy
import numpy as np

from . import camera_math

K_PROPERTY = "handcap_K"                    # the camera's K, 9 floats row by row, pixels
SIZE_PROPERTY = "handcap_image_size"        # its image (width, height), pixels
VIEW_PROPERTY = "handcap_view"              # on the camera object: which view of its capture (0 first)
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
    data[K_PROPERTY] = [float(v) for v in np.asarray(K, np.float64).reshape(9)]
    data[SIZE_PROPERTY] = [int(image_size[0]), int(image_size[1])]
    obj = bpy.data.objects.new(name, data)
    collection.objects.link(obj)
    return obj


def place_view_camera(camera: bpy.types.Object, first: bpy.types.Object, R: np.ndarray, t: np.ndarray) -> None:
    """Put ``camera`` where a view that sees the first camera's OpenCV point x at ``R @ x + t``
    (R (3, 3), t (3,) metres) stands, given the first view's camera object ``first``."""
    pose = np.asarray(first.matrix_world, np.float64) @ camera_math.view_from_first(R, t)
    camera.matrix_world = pose.T.tolist()     # Blender reads nested lists for a matrix property as its columns


def camera_intrinsics(camera: bpy.types.Object):
    """(K (3, 3), image size (W, H)) stored on a camera the add-on built, or None for any other camera."""
    data = getattr(camera, "data", None)
    if data is None or K_PROPERTY not in data or SIZE_PROPERTY not in data:
        return None
    return np.array(list(data[K_PROPERTY]), np.float64).reshape(3, 3), tuple(int(v) for v in data[SIZE_PROPERTY])


def match_render_to_camera(scene: bpy.types.Scene, camera: bpy.types.Object) -> bool:
    """Make ``camera`` the scene camera with its own render size; False (only the camera set)
    for a camera the add-on did not build."""
    scene.camera = camera
    stored = camera_intrinsics(camera)
    if stored is None:
        return False
    match_render_settings(scene, *stored)
    return True


def match_render_settings(scene: bpy.types.Scene, K: np.ndarray, image_size) -> None:
    """Scene resolution and pixel aspect of the source image, at 100 %."""
    settings = camera_math.camera_settings(K, image_size)
    scene.render.resolution_x, scene.render.resolution_y = settings.resolution
    scene.render.resolution_percentage = 100
    scene.render.pixel_aspect_x, scene.render.pixel_aspect_y = settings.pixel_aspect


def is_video(path: str) -> bool:
    """True for a path with a video file extension."""
    return os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS


def add_background(camera: bpy.types.Object, source_path: str, frame_offset: int = 0) -> list:
    """Show the source photo (an Image) or video (a MovieClip) behind the camera view.

    Video frame 0 plays at scene frame 1, as the keyframes do (frame = source index + 1); a
    view whose frame ``i + frame_offset`` shows the first view's frame i starts ``frame_offset``
    frames earlier (its clip's ``frame_start`` is ``1 - frame_offset``).
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
            clip.frame_start = 1 - int(frame_offset)
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
