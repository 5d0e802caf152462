"""A retargeted take as keys on the target's pose bones: one action, pushed to an NLA strip.

The take gets one action with a slot for the target armature (``keyframes.channels_for``), every
F-curve filled in bulk (``keyframes.fill_fcurves``: ``keyframe_points.add`` + ``foreach_set``),
one key per frame of the take. Rotations are keyed in each bone's own rotation mode
(quaternion, any Euler order, axis-angle). The action then goes down into an NLA track and strip
named after the source, starting at the take's first frame; the armature's own active action
(body animation, say) is put back, so channels it has keep playing. Running the same take
again replaces its track. Bones with no channel here get no F-curve.
"""

from __future__ import annotations

import dataclasses

import bpy
import numpy as np

from .. import keyframes
from . import rotations


@dataclasses.dataclass
class BoneKeys:
    """What one target bone gets over the take: rotation (N, 3, 3) basis, optional location (N, 3)."""

    bone: str
    rotation: np.ndarray
    location: np.ndarray = None


def rotation_channels(pose_bone, basis_rotation: np.ndarray) -> tuple:
    """(property, values (N, C)) keying ``basis_rotation`` (N, 3, 3) in the bone's rotation mode."""
    mode = pose_bone.rotation_mode
    quats = rotations.align_hemisphere(rotations.matrix_to_quaternion(basis_rotation))
    if mode == "QUATERNION":
        return "rotation_quaternion", quats
    if mode == "AXIS_ANGLE":
        return "rotation_axis_angle", rotations.quaternion_to_axis_angle_channels(quats)
    return "rotation_euler", rotations.matrix_to_euler(basis_rotation, mode)


def write_take(target: bpy.types.Object, name: str, frames: np.ndarray, keys: list) -> tuple:
    """Key ``keys`` (BoneKeys) on ``target`` at ``frames`` (N,) as the take ``name``.

    Returns (action, NLA track). A track already named ``name`` (an earlier run of the same
    take) is removed first, with its action when nothing else uses it.
    """
    anim = target.animation_data or target.animation_data_create()
    previous_action = anim.action
    previous_slot = anim.action_slot if previous_action is not None and keyframes.HAS_SLOTS else None
    remove_take(target, name)
    anim.action = None
    channels, action = keyframes.channels_for(name, target)
    esc = bpy.utils.escape_identifier
    for item in keys:
        pose_bone = target.pose.bones[item.bone]
        prop, values = rotation_channels(pose_bone, item.rotation)
        path = f'pose.bones["{esc(item.bone)}"]'
        keyframes.fill_fcurves(channels, f"{path}.{prop}", frames, values, item.bone)
        if item.location is not None:
            keyframes.fill_fcurves(channels, f"{path}.location", frames, item.location, item.bone)
    slot = anim.action_slot if keyframes.HAS_SLOTS else None
    track = anim.nla_tracks.new()
    track.name = name
    strip = track.strips.new(name, int(round(frames[0])), action)
    if slot is not None:
        strip.action_slot = slot
    anim.action = previous_action
    if previous_slot is not None:
        anim.action_slot = previous_slot
    return action, track


def remove_take(target: bpy.types.Object, name: str) -> None:
    """Remove the NLA track named ``name`` and its strips' actions that nothing else uses."""
    anim = target.animation_data
    if anim is None:
        return
    for track in [t for t in anim.nla_tracks if t.name == name]:
        actions = [s.action for s in track.strips if s.action is not None]
        anim.nla_tracks.remove(track)
        for action in actions:
            if action.users == 0:
                bpy.data.actions.remove(action)
