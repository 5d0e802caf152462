"""The hand armature: one bone per joint, heads at the rest joints, rolls from the palm.

The armature object carries the OpenCV-camera-to-Blender-world rotation (``CV_TO_BLENDER``,
180 degrees about X) so that bone and mesh coordinates stay in the capture's camera space.
"""

from __future__ import annotations

import bpy
import numpy as np

from . import rig_math


def new_armature_object(name: str, collection: bpy.types.Collection, heads: np.ndarray,
                        tails: np.ndarray, z_axes: np.ndarray, parents, bone_names: list,
                        view_layer: bpy.types.ViewLayer) -> bpy.types.Object:
    """An armature object linked into ``collection`` with bones (J): heads/tails (J, 3) metres.

    ``z_axes`` (J, 3) sets each bone's roll (its local Z points that way). A bone whose head
    is its parent's tail is connected. Edit mode is entered and left on this object only.
    """
    data = bpy.data.armatures.new(name)
    data.display_type = "OCTAHEDRAL"
    obj = bpy.data.objects.new(name, data)
    obj.rotation_mode = "XYZ"
    obj.rotation_euler = rig_math.CV_TO_BLENDER_EULER
    obj.show_in_front = True
    collection.objects.link(obj)
    with _edit_mode(obj, view_layer):
        bones = []
        for j, bone_name in enumerate(bone_names):
            eb = data.edit_bones.new(bone_name)
            eb.head = heads[j].tolist()
            eb.tail = tails[j].tolist()
            eb.align_roll(z_axes[j].tolist())
            eb.use_deform = True
            if parents[j] >= 0:
                parent = bones[int(parents[j])]
                eb.parent = parent
                eb.use_connect = bool(np.allclose(parent.tail, eb.head, atol=1e-7))
            bones.append(eb)
    return obj


def bone_rest_rotations(obj: bpy.types.Object) -> np.ndarray:
    """Rest rotation (J, 3, 3) of each bone in armature space (columns: bone X, Y, Z)."""
    bones = obj.data.bones
    flat = np.empty(len(bones) * 16, np.float32)
    bones.foreach_get("matrix_local", flat)
    # foreach_get yields each 4x4 matrix column by column.
    return flat.reshape(-1, 4, 4).transpose(0, 2, 1)[:, :3, :3].astype(np.float64)


class _edit_mode:
    """Context manager: make ``obj`` the only selected, active object and edit it."""

    def __init__(self, obj, view_layer):
        self.obj, self.view_layer = obj, view_layer

    def __enter__(self):
        for other in self.view_layer.objects.selected:
            other.select_set(False)
        self.obj.select_set(True)
        self.view_layer.objects.active = self.obj
        bpy.ops.object.mode_set(mode="EDIT")

    def __exit__(self, *exc):
        bpy.ops.object.mode_set(mode="OBJECT")
        return False
