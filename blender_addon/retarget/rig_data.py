"""Armatures read into numpy: bones for name detection, rest poses, and a capture rig's animation.

A capture rig is the armature handcap builds (``import_capture``): bones named like Rigify's hand
(``naming.RIGIFY_HAND_BONES`` with ``.L``/``.R``), keyed through its active action. Its pose is
recomputed here from the action's F-curves (``fcurve.evaluate`` on every frame of the take, then
Blender's pose formula in numpy), so no frame has to be set in the scene.
"""

from __future__ import annotations

import bpy
import numpy as np

from .. import naming
from . import bone_transfer, rotations
from .name_mapping import JOINTS, BoneInfo


def bone_infos(obj: bpy.types.Object) -> list:
    """The armature's bones as ``BoneInfo`` (name, parent, has constraints)."""
    pose = obj.pose.bones
    return [BoneInfo(b.name, b.parent.name if b.parent else "", bool(len(pose[b.name].constraints)))
            for b in obj.data.bones]


def rest_matrices(obj: bpy.types.Object) -> tuple:
    """(names, rest (B, 4, 4) ``matrix_local``, parents (B,) parent index or -1)."""
    bones = obj.data.bones
    flat = np.empty(len(bones) * 16, np.float32)
    bones.foreach_get("matrix_local", flat)
    rest = flat.reshape(-1, 4, 4).transpose(0, 2, 1).astype(np.float64)   # column by column
    names = [b.name for b in bones]
    index = {n: i for i, n in enumerate(names)}
    parents = np.array([index[b.parent.name] if b.parent else -1 for b in bones])
    # matrix_local is float32 in Blender: make each rotation exactly orthonormal again
    rest[:, :3, :3] = rotations.orthonormal(rest[:, :3, :3])
    return names, rest, parents


def object_matrix(obj: bpy.types.Object) -> np.ndarray:
    return np.array(obj.matrix_world, np.float64)


def hand_rest(obj: bpy.types.Object, side_bones: dict, side: str) -> bone_transfer.HandRest:
    """The rest pose in world space of the mapped bones (slot -> bone name) of one hand.

    A bone's "tail" here is where its segment ends (``segment_end``), which is not always
    where Blender draws its tail: rigs imported with bones along X (Unreal's convention) have
    tails off to the side of the finger.
    """
    names, rest, _ = rest_matrices(obj)
    index = {n: i for i, n in enumerate(names)}
    world = object_matrix(obj)
    rot_world = rotations.orthonormal(world[:3, :3])
    rots, heads, tails = {}, {}, {}
    for slot, name in side_bones.items():
        if not name:
            continue
        b = obj.data.bones[name]
        rots[slot] = rot_world @ rest[index[name], :3, :3]
        heads[slot] = world[:3, :3] @ np.array(b.head_local, np.float64) + world[:3, 3]
        tails[slot] = world[:3, :3] @ segment_end(obj, side_bones, slot) + world[:3, 3]
    return bone_transfer.HandRest(side, rots, heads, tails)


def segment_end(obj, side_bones: dict, slot: str) -> np.ndarray:
    """Where a finger bone's segment ends, armature space (3,): the head of the next mapped
    bone of its finger (a metacarpal's is the first bone), else of its only child (an end
    bone such as Mixamo's ``...Index4`` or Unreal's ``..._04_leaf``), else its own tail."""
    bone = obj.data.bones[side_bones[slot]]
    if slot != "wrist":
        following = slot[:-1] + str(int(slot[-1]) + 1)
        name = side_bones.get(following, "")
        if name and _descends(obj.data.bones[name], bone):
            return np.array(obj.data.bones[name].head_local, np.float64)
        if len(bone.children) == 1 and (bone.children[0].head_local - bone.head_local).length > 1e-6:
            return np.array(bone.children[0].head_local, np.float64)
    return np.array(bone.tail_local, np.float64)


def _descends(bone, ancestor) -> bool:
    parent = bone.parent
    while parent is not None:
        if parent == ancestor:
            return True
        parent = parent.parent
    return False


# --- capture rigs -------------------------------------------------------------------------

def capture_rig_side(obj) -> str:
    """'left'/'right' when ``obj`` is an armature with handcap's hand bones, else ''."""
    if obj is None or obj.type != "ARMATURE":
        return ""
    for side in ("right", "left"):
        if all(n in obj.data.bones for n in capture_bone_names(side).values()):
            return side
    return ""


def capture_bone_names(side: str) -> dict:
    """slot -> the bone name handcap's rig gives that joint on ``side``."""
    suffix = naming.side_suffix(side)
    return {slot: name + suffix for slot, name in zip(JOINTS, naming.RIGIFY_HAND_BONES)}


def take_name(obj) -> str:
    """The name a take from capture rig ``obj`` goes by: its capture's collection, else the rig's."""
    for collection in obj.users_collection:
        if collection is not bpy.context.scene.collection and collection.name:
            return collection.name
    return obj.name


def active_fcurves(obj) -> list:
    """The F-curves driving ``obj`` through its active action (and slot); [] when none."""
    anim = obj.animation_data
    action = anim.action if anim else None
    if action is None:
        return []
    if hasattr(action, "fcurves") and not hasattr(bpy.types, "ActionSlot"):  # Blender < 4.4
        return list(action.fcurves)
    from bpy_extras import anim_utils
    bag = anim_utils.action_get_channelbag_for_slot(action, anim.action_slot)
    return list(bag.fcurves) if bag else []


def keyed_range(fcurves: list) -> tuple:
    """(first, last) whole frame keyed in any of the F-curves; ValueError when there are none."""
    lo, hi = np.inf, -np.inf
    for fc in fcurves:
        n = len(fc.keyframe_points)
        if n:
            co = np.empty(2 * n, np.float32)
            fc.keyframe_points.foreach_get("co", co)
            lo, hi = min(lo, co[0::2].min()), max(hi, co[0::2].max())
    if not np.isfinite(lo):
        raise ValueError("no keys")
    return int(np.floor(lo + 1e-4)), int(np.ceil(hi - 1e-4))


def capture_animation(obj, side: str, frames: np.ndarray = None) -> tuple:
    """A capture rig over ``frames`` (default: its keyed range): (frames (N,), world rotations
    slot -> (N, 3, 3), wrist heads (N, 3) in world space). ValueError when it has no keys."""
    fcurves = active_fcurves(obj)
    if frames is None:
        try:
            start, end = keyed_range(fcurves)
        except ValueError:
            raise ValueError(f"{obj.name}: the capture rig has no keyed animation (no active action)") from None
        frames = np.arange(start, end + 1, dtype=np.float64)
    names, rest, parents = rest_matrices(obj)
    curves = {(fc.data_path, fc.array_index): fc for fc in fcurves}
    basis = np.broadcast_to(np.eye(4), (len(frames), len(names), 4, 4)).copy()
    for b, name in enumerate(names):
        basis[:, b] = _basis_over(obj.pose.bones[name], curves, frames)
    posed = bone_transfer.posed_matrices(rest, parents, basis)
    world = object_matrix(obj)
    rot_world = rotations.orthonormal(world[:3, :3])
    index = {n: i for i, n in enumerate(names)}
    bones = capture_bone_names(side)
    rots = {slot: rot_world @ posed[:, index[n], :3, :3] for slot, n in bones.items()}
    wrist = posed[:, index[bones["wrist"]], :3, 3] @ world[:3, :3].T + world[:3, 3]
    return frames, rots, wrist


def _channel(pose_bone, curves: dict, prop: str, frames: np.ndarray) -> np.ndarray:
    """A pose bone property's channels over ``frames`` (N, C): its F-curves where keyed, else
    the property's current value."""
    esc = bpy.utils.escape_identifier
    path = f'pose.bones["{esc(pose_bone.name)}"].{prop}'
    current = np.array(getattr(pose_bone, prop), np.float64)
    out = np.tile(current, (len(frames), 1))
    for i in range(len(current)):
        fc = curves.get((path, i))
        if fc is not None:
            out[:, i] = evaluate(fc, frames)
    return out


LINEAR = bpy.types.Keyframe.bl_rna.properties["interpolation"].enum_items["LINEAR"].value


def evaluate(fcurve, frames: np.ndarray) -> np.ndarray:
    """An F-curve's values at ``frames`` (N,): in bulk when every key is linear and nothing
    else shapes the curve (handcap's own keys), else ``fcurve.evaluate`` frame by frame."""
    points = fcurve.keyframe_points
    n = len(points)
    interpolation = np.empty(n, np.int8)
    points.foreach_get("interpolation", interpolation)
    plain = (n > 0 and np.all(interpolation == LINEAR) and not len(fcurve.modifiers)
             and fcurve.extrapolation == "CONSTANT")
    if not plain:
        return np.array([fcurve.evaluate(f) for f in frames])
    co = np.empty(2 * n, np.float32)
    points.foreach_get("co", co)
    return np.interp(frames, co[0::2], co[1::2])


def _basis_over(pose_bone, curves: dict, frames: np.ndarray) -> np.ndarray:
    """``matrix_basis`` (N, 4, 4) of a pose bone over ``frames`` (rotation and location)."""
    mode = pose_bone.rotation_mode
    if mode == "QUATERNION":
        R = rotations.quaternion_to_matrix(_channel(pose_bone, curves, "rotation_quaternion", frames))
    elif mode == "AXIS_ANGLE":
        R = rotations.axis_angle_to_matrix(_channel(pose_bone, curves, "rotation_axis_angle", frames))
    else:
        R = rotations.euler_to_matrix(_channel(pose_bone, curves, "rotation_euler", frames), mode)
    out = np.broadcast_to(np.eye(4), (len(frames), 4, 4)).copy()
    out[:, :3, :3] = R
    out[:, :3, 3] = _channel(pose_bone, curves, "location", frames)
    return out
