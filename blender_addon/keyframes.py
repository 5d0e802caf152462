"""Bulk keyframing through Blender's slotted actions (5.0 has no ``Action.fcurves``).

One action per rig with two slots: the armature object's (bone rotations, root location)
and the mesh's shape-key datablock's (pose correctives). Each F-curve gets all its keys at
once with ``keyframe_points.add`` + ``foreach_set``; keys are LINEAR so the curve passes
exactly through every captured value. Keys of frames the engine filled over a short gap (the
capture's ``interpolated``) are of type BREAKDOWN, so the Dope Sheet and Graph Editor show them
apart from the seen frames' keys. Blender 4.2/4.3 (no slots yet) get one legacy action per
datablock instead.
"""

from __future__ import annotations

import bpy
import numpy as np

from .naming import CORRECTIVES_GROUP

LINEAR = bpy.types.Keyframe.bl_rna.properties["interpolation"].enum_items["LINEAR"].value
KEY_TYPES = bpy.types.Keyframe.bl_rna.properties["type"].enum_items
KEYFRAME, BREAKDOWN = KEY_TYPES["KEYFRAME"].value, KEY_TYPES["BREAKDOWN"].value
HAS_SLOTS = hasattr(bpy.types, "ActionSlot")


class _LegacyChannels:
    """Blender < 4.4: a datablock's own action stands in for a slot's channelbag."""

    def __init__(self, action):
        self.action = action

    def new(self, data_path, index, group_name):
        return self.action.fcurves.new(data_path, index=index, action_group=group_name)


class _SlotChannels:
    def __init__(self, channelbag):
        self.channelbag = channelbag

    def new(self, data_path, index, group_name):
        # fcurves.new() takes a group_name only from Blender 5.0: group the curve afterwards (4.4 on).
        fcurve = self.channelbag.fcurves.new(data_path, index=index)
        if group_name:
            groups = self.channelbag.groups
            fcurve.group = groups.get(group_name) or groups.new(group_name)
        return fcurve


def channels_for(action_name: str, datablock: bpy.types.ID, shared=None):
    """F-curve factory for ``datablock``, assigning it an action (shared across datablocks
    through slots when Blender has them). Returns (channels, action)."""
    anim = datablock.animation_data or datablock.animation_data_create()
    if not HAS_SLOTS:
        action = bpy.data.actions.new(f"{action_name} {datablock.id_type.lower()}")
        anim.action = action
        return _LegacyChannels(action), action
    action = shared or bpy.data.actions.new(action_name)
    if not action.layers:
        action.layers.new("Capture").strips.new(type="KEYFRAME")
    slot = action.slots.new(id_type=datablock.id_type, name=datablock.name)
    anim.action = action
    anim.action_slot = slot
    return _SlotChannels(action.layers[0].strips[0].channelbag(slot, ensure=True)), action


def fill_fcurves(channels, data_path: str, frames: np.ndarray, values: np.ndarray,
                 group: str = "", breakdown: np.ndarray = None) -> None:
    """Key ``data_path[i]`` with ``values[:, i]`` at ``frames`` for every column i, in bulk.

    frames: (N,) Blender frame numbers; values: (N, C) channel values; breakdown: (N,) bool, keys
    of type BREAKDOWN (the rest KEYFRAME), or None (all KEYFRAME).
    """
    frames = np.asarray(frames, np.float32)
    values = np.asarray(values, np.float32).reshape(len(frames), -1)
    co = np.empty((len(frames), 2), np.float32)
    co[:, 0] = frames
    interpolation = np.full(len(frames), LINEAR, np.int8)
    key_types = None if breakdown is None or not np.any(breakdown) else np.where(np.asarray(breakdown, bool), BREAKDOWN, KEYFRAME).astype(np.int8)
    for i in range(values.shape[1]):
        fcurve = channels.new(data_path, i, group)
        points = fcurve.keyframe_points
        points.add(len(frames))
        co[:, 1] = values[:, i]
        points.foreach_set("co", co.ravel())
        points.foreach_set("interpolation", interpolation)
        if key_types is not None:
            points.foreach_set("type", key_types)
        fcurve.update()


def key_rig(action_name: str, armature: bpy.types.Object, bone_names: list,
            frames: np.ndarray, quats: np.ndarray, root_loc: np.ndarray,
            mesh: bpy.types.Object = None, key_names: list = None,
            key_values: np.ndarray = None, breakdown: np.ndarray = None) -> bpy.types.Action:
    """Key a whole rig at frames (N,): quats (N, J, 4) w-first, root_loc (N, 3) metres, and
    when given, shape-key values (N, P) on ``mesh``'s shape keys named ``key_names``;
    ``breakdown`` (N,) bool marks the keys of filled frames (type BREAKDOWN).
    """
    esc = bpy.utils.escape_identifier
    channels, action = channels_for(action_name, armature)
    fill_fcurves(channels, f'pose.bones["{esc(bone_names[0])}"].location', frames, root_loc,
                 bone_names[0], breakdown)
    for j, name in enumerate(bone_names):
        fill_fcurves(channels, f'pose.bones["{esc(name)}"].rotation_quaternion', frames,
                     quats[:, j], name, breakdown)
    if key_values is not None:
        key_channels, _ = channels_for(action_name, mesh.data.shape_keys, action)
        for k, name in enumerate(key_names):
            fill_fcurves(key_channels, f'key_blocks["{esc(name)}"].value', frames,
                         key_values[:, k:k + 1], CORRECTIVES_GROUP, breakdown)
    return action
