"""Where an imported capture goes in the user's scene: where nothing of theirs hides its photo.

A capture's camera sits at the world origin looking down -Z, its hands in front of it (below the
origin), and the photo is the camera's background image, drawn behind everything. In a scene
with something at the origin (Blender's default 2 m cube, a floor below zero, a set) that thing
fills the camera's view and, looking through the camera, the hands show on grey instead of on
the photo. So the capture moves, and nothing of the user's does:

* when no object of the scene lies in the camera's view (its frustum from ``clip_start`` to
  ``clip_end``), the capture stays where it always was: at the origin (an empty scene, the
  headless conversions);
* otherwise camera and hands move down together, rigidly, until the camera is ``GAP_M`` below
  the lowest point of the scene's objects. The camera looks down, so its whole view then lies
  below everything in the scene, whatever the photo's depth, field of view or ``clip_end``, and
  the hands keep their place in the photo (only the world position changes).

The other ways were worse for a Blender user: drawing the background in front ("FRONT") puts
the photo over the hands; hiding or moving the user's objects changes their scene; a short
``clip_end`` still leaves what lies between the camera and the hands, and cuts off what they
add later. The bounds are the objects' evaluated bounding boxes (modifiers, instances
included); the test against the view is conservative (a box near the frustum's edge may count
as in view, which only moves the capture when it need not).
"""

from __future__ import annotations

import bpy
import numpy as np

from . import rig_math

# Object types that draw surfaces (lights, cameras, empties and armatures draw as overlays).
SURFACE_TYPES = {"MESH", "CURVE", "SURFACE", "META", "FONT", "VOLUME", "POINTCLOUD", "CURVES",
                 "GREASEPENCIL", "GPENCIL"}
GAP_M = 0.05              # metres between the lowest object of the scene and a moved capture's camera


def scene_boxes(context) -> np.ndarray:
    """World-space bounding boxes (B, 2, 3) (min, max corners, metres) of every visible object
    instance in the context's view layer that draws surfaces."""
    boxes = []
    for instance in context.evaluated_depsgraph_get().object_instances:
        obj = instance.object
        if obj.type not in SURFACE_TYPES:
            continue
        corners = np.array([tuple(c) for c in obj.bound_box], np.float64)        # (8, 3) local
        M = np.array(instance.matrix_world, np.float64)
        world = corners @ M[:3, :3].T + M[:3, 3]
        boxes.append((world.min(0), world.max(0)))
    return np.array(boxes, np.float64).reshape(-1, 2, 3)


def frustum_corners(K: np.ndarray, image_size, clip_start: float, clip_end: float) -> np.ndarray:
    """The 8 corners (8, 3) of the view of a camera at the origin with identity rotation, in
    Blender coordinates (metres): the image's corners at depths ``clip_start`` and ``clip_end``."""
    width, height = float(image_size[0]), float(image_size[1])
    pixels = np.array([[-0.5, -0.5, 1.0], [width - 0.5, -0.5, 1.0], [width - 0.5, height - 0.5, 1.0],
                       [-0.5, height - 0.5, 1.0]])
    rays = pixels @ np.linalg.inv(np.asarray(K, np.float64)).T                   # OpenCV, depth 1
    corners = np.concatenate([rays * clip_start, rays * clip_end])
    return corners @ rig_math.CV_TO_BLENDER.T


def _outside(points: np.ndarray, normal: np.ndarray, offset: float) -> bool:
    """Whether every point (N, 3) lies strictly on the positive side of the plane n.x = offset."""
    return bool(np.all(points @ normal > offset))


def box_in_view(corners: np.ndarray, box: np.ndarray) -> bool:
    """Whether the axis-aligned box (2, 3) may meet the frustum with ``corners`` (8, 3: near ring,
    then far ring): false only when a face plane of either separates them."""
    lo, hi = box
    for axis in range(3):
        if np.all(corners[:, axis] < lo[axis]) or np.all(corners[:, axis] > hi[axis]):
            return False
    box_corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    centre = corners.mean(0)
    near, far = corners[:4], corners[4:]
    faces = [near, far] + [np.array([near[i], near[(i + 1) % 4], far[(i + 1) % 4], far[i]]) for i in range(4)]
    for face in faces:
        normal = np.cross(face[1] - face[0], face[2] - face[0])
        if np.linalg.norm(normal) < 1e-12:
            continue
        if normal @ (centre - face[0]) > 0:
            normal = -normal                                                    # pointing out of the frustum
        if _outside(box_corners, normal, normal @ face[0]):
            return False
    return True


def clear_offset(corners: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """The world offset (3,) in metres for a capture whose camera at the origin sees the frustum
    ``corners`` (8, 3): zero when no box (B, 2, 3) is in view, else straight down until the
    camera is ``GAP_M`` below the lowest box (module doc)."""
    if not any(box_in_view(corners, box) for box in boxes):
        return np.zeros(3)
    return np.array([0.0, 0.0, min(0.0, float(boxes[:, 0, 2].min())) - GAP_M])


def place_clear(camera: bpy.types.Object, rigs: list, boxes: np.ndarray, K: np.ndarray, image_size,
                others: tuple = ()) -> np.ndarray:
    """Move a just-built capture (its camera at the origin and its rigs, [(armature, mesh)]) by
    ``clear_offset`` against the scene's ``boxes`` (taken before the capture was built); the
    meshes follow their armatures, ``others`` (a multi-view capture's other cameras) move along.
    The offset comes from the first camera's view alone. Returns the offset (3,) in metres."""
    data = camera.data
    offset = clear_offset(frustum_corners(K, image_size, data.clip_start, data.clip_end), boxes)
    if np.any(offset):
        for obj in [camera, *others, *[armature for armature, _ in rigs]]:
            obj.location = (np.array(obj.location) + offset).tolist()
    return offset
