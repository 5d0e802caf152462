"""The Retarget panel's settings (per scene): target and capture rig, options, the mapping list."""

from __future__ import annotations

import bpy

from . import rig_data
from .bone_transfer import TransferOptions
from .retarget_rig import detect
from .name_mapping import SIDES, SLOTS, Mapping

SLOT_LABELS = {"wrist": "Wrist", **{f"{f}{k}": f"{f.title()} {k}" for f in ("thumb", "index", "middle", "ring", "pinky")
                                    for k in (1, 2, 3)},
               **{f"{f}0": f"{f.title()} Metacarpal" for f in ("index", "middle", "ring", "pinky")}}


class HANDCAP_RetargetBone(bpy.types.PropertyGroup):
    """One row of the mapping: a hand joint of one side and the target bone that plays it."""

    side: bpy.props.EnumProperty(items=[(s, s.title(), "") for s in SIDES])
    slot: bpy.props.StringProperty()
    bone: bpy.props.StringProperty(name="Bone", description="The target armature's bone for this joint (empty: none)")

    def label(self) -> str:
        return f"{self.side.title()} {SLOT_LABELS.get(self.slot, self.slot)}"


def _is_armature(self, obj) -> bool:
    return obj.type == "ARMATURE"


def _is_capture_rig(self, obj) -> bool:
    return bool(rig_data.capture_rig_side(obj))


def _target_changed(self, context) -> None:
    """A new target: fill the list from its bone names."""
    if self.target is not None:
        self.set_mapping(detect(self.target))
    else:
        self.set_mapping(Mapping())


class HANDCAP_RetargetSettings(bpy.types.PropertyGroup):
    """What the Retarget panel asks for."""

    target: bpy.props.PointerProperty(
        name="Target", type=bpy.types.Object, poll=_is_armature, update=_target_changed,
        description="Your character's armature: its finger bones get the capture's animation")
    source: bpy.props.PointerProperty(
        name="Capture Rig", type=bpy.types.Object, poll=_is_capture_rig,
        description="A hand rig that handcap imported (the hand of the other side in its collection comes too)")
    both_hands: bpy.props.BoolProperty(
        name="Both Hands", default=True,
        description="Also retarget the capture's hand of the other side, from the same collection")
    wrist_rotation: bpy.props.BoolProperty(
        name="Wrist Rotation", default=False,
        description="Turn the target's hand like the captured hand (world space, arm at rest); off: only fingers")
    wrist_location: bpy.props.BoolProperty(
        name="Wrist Location", default=False,
        description="Move the target's hand to the captured wrist (not for a hand bone connected to its arm)")
    metacarpal_share: bpy.props.FloatProperty(
        name="Metacarpal Share", default=0.0, min=0.0, max=1.0, subtype="FACTOR",
        description="How much of each knuckle's turn the metacarpal bones take (0: they stay at rest)")
    bones: bpy.props.CollectionProperty(type=HANDCAP_RetargetBone)
    active_bone: bpy.props.IntProperty(default=0)

    def mapping(self) -> Mapping:
        mapping = Mapping()
        for row in self.bones:
            if row.slot in SLOTS:
                mapping.set(row.side, row.slot, row.bone)
        return mapping

    def set_mapping(self, mapping: Mapping) -> None:
        self.bones.clear()
        for side in SIDES:
            for slot in SLOTS:
                row = self.bones.add()
                row.side, row.slot, row.bone = side, slot, mapping.get(side, slot)

    def options(self) -> TransferOptions:
        return TransferOptions(wrist_rotation=self.wrist_rotation, wrist_location=self.wrist_location,
                               metacarpal_share=self.metacarpal_share)


CLASSES = (HANDCAP_RetargetBone, HANDCAP_RetargetSettings)


def register_properties() -> None:
    bpy.types.Scene.handcap_retarget = bpy.props.PointerProperty(type=HANDCAP_RetargetSettings)


def unregister_properties() -> None:
    del bpy.types.Scene.handcap_retarget
