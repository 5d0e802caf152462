"""Retarget capture rigs onto a target armature: read both, transfer, key (the one entry point
the panel, ``handcap retarget`` and batch.py share)."""

from __future__ import annotations

import dataclasses

import bpy
import numpy as np

from . import bone_transfer, keys, rig_data
from .bone_transfer import TransferOptions  # noqa: F401 (callers build options from here)
from .name_mapping import FINGERS, SIDES, SLOTS, Mapping, check_mapping, detect_mapping


@dataclasses.dataclass
class Report:
    """What a retarget did: the take, its frames, the bones keyed, what had no match."""

    take: str
    target: str
    frames: tuple = (0, 0)
    keyed: list = dataclasses.field(default_factory=list)
    unmatched: list = dataclasses.field(default_factory=list)     # one line per finger or joint
    warnings: list = dataclasses.field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.take} -> {self.target}: {len(self.keyed)} bones keyed, frames "
                f"{self.frames[0]}-{self.frames[1]}")


def detect(target: bpy.types.Object) -> Mapping:
    """The mapping the target armature's bone names suggest (``name_mapping.detect_mapping``)."""
    return detect_mapping(rig_data.bone_infos(target))


def unmatched_lines(mapping: Mapping, side: str) -> list:
    """'left pinky: no matching bone' for a finger with none of its three bones mapped, else one
    line per missing joint."""
    missing = set(mapping.missing(side))
    lines = []
    for finger in FINGERS:
        slots = [f"{finger}{i}" for i in (1, 2, 3)]
        gone = [s for s in slots if s in missing]
        if len(gone) == 3:
            lines.append(f"{side} {finger}: no matching bone (the finger stays as it is)")
        elif gone:
            lines.append(f"{side} {', '.join(gone)}: no matching bone")
    return lines


def retarget(sources: list, target: bpy.types.Object, mapping: Mapping = None,
             options: TransferOptions = None, take: str = "", hand: str = "auto") -> Report:
    """Key the capture rigs ``sources`` (one take: one rig per hand) onto ``target``.

    Each source drives the target's hand of its own side. ``mapping`` defaults to the one the
    names suggest. ``hand``: "left" or "right" keys that source only; "auto" every source whose
    side the target has a hand for (``keyed_sides``). Raises ValueError (nothing keyed) for a
    source that is no capture rig, two sources of one side, nothing left to key, a broken mapping
    or a side with no wrist; a finger without a match is only reported.
    """
    if target is None or target.type != "ARMATURE":
        raise ValueError("the target must be an armature")
    options = options or TransferOptions()
    mapping = mapping or detect(target)
    sides = {}
    for source in sources:
        side = rig_data.capture_rig_side(source)
        if not side:
            raise ValueError(f"{source.name}: not a handcap capture rig (no hand.L/hand.R with handcap's finger bones)")
        if side in sides:
            raise ValueError(f"{source.name} and {sides[side].name} are both {side} hands: retarget them one at a time")
        if source == target:
            raise ValueError(f"{source.name}: the capture rig cannot be its own target")
        sides[side] = source
    sides, skipped = keyed_sides(sides, mapping, target.name, hand)
    problems = [p for p in check_mapping(mapping, rig_data.bone_infos(target)) if p.split()[0] in sides]
    for side in sides:
        if not mapping.get(side, "wrist"):
            problems.append(f"{side} wrist: no bone of {target.name} is mapped to the {side} wrist")
    if problems:
        raise ValueError("; ".join(problems))
    bpy.context.view_layer.update()                        # object matrices as they are now
    report = Report(take or rig_data.take_name(next(iter(sides.values()))), target.name, warnings=skipped)
    frames = _take_frames(list(sides.values()))
    names, rest, parents = rig_data.rest_matrices(target)
    index = {n: i for i, n in enumerate(names)}
    rot_world, inverse = bone_transfer.world_to_armature(rig_data.object_matrix(target))
    keyed, heads = {}, {}
    for side, source in sides.items():
        report.unmatched += unmatched_lines(mapping, side)
        target_bones = {slot: mapping.get(side, slot) for slot in SLOTS if mapping.get(side, slot)}
        source_rest = rig_data.hand_rest(source, rig_data.capture_bone_names(side), side)
        target_rest = rig_data.hand_rest(target, target_bones, side)
        _, source_rots, source_wrist = rig_data.capture_animation(source, side, frames)
        world = bone_transfer.target_world_rotations(source_rest, source_rots, target_rest, options)
        for slot, rots in world.items():
            keyed[index[target_bones[slot]]] = rot_world.T @ rots
        if options.wrist_location:
            wrist = target.data.bones[target_bones["wrist"]]
            if wrist.use_connect:
                report.warnings.append(f"{wrist.name} is connected to its parent: its location cannot be keyed")
            else:
                if not options.wrist_rotation:                    # the hand keeps its rest turn
                    keyed[index[wrist.name]] = np.broadcast_to(
                        rot_world.T @ target_rest.rotations["wrist"], (len(frames), 3, 3))
                heads[index[wrist.name]] = source_wrist @ inverse[:3, :3].T + inverse[:3, 3]
    channels = bone_transfer.local_channels(rest, parents, keyed, heads)
    bone_keys = [keys.BoneKeys(names[b], rot, loc if b in heads else None)
                 for b, (rot, loc) in sorted(channels.items())]
    report.warnings += _bone_warnings(target, [k.bone for k in bone_keys])
    keys.write_take(target, report.take, frames, bone_keys)
    report.frames = (int(frames[0]), int(frames[-1]))
    report.keyed = [k.bone for k in bone_keys]
    return report


def keyed_sides(sources: dict, mapping: Mapping, target: str, hand: str = "auto") -> tuple:
    """(side -> source rig to key, warnings): which captured hands go onto the target.

    ``sources``: side -> capture rig. A target has a hand on a side when any of that side's finger
    bones is mapped. With ``hand`` "auto" a captured side the target lacks (a rig with only a
    right hand, say) is left out with one warning, so the sides it has still get their keys;
    "left"/"right" keeps that side alone. ValueError when nothing is left to key.
    """
    if hand not in ("auto", *SIDES):
        raise ValueError(f"hand must be auto, left or right, not {hand!r}")
    if hand != "auto":
        if hand not in sources:
            raise ValueError(f"the capture has no {hand} hand (it has: {', '.join(sources) or 'none'})")
        sources = {hand: sources[hand]}
    kept = {side: rig for side, rig in sources.items() if mapping.has_fingers(side)}
    lacking = [side for side in sources if side not in kept]
    if not kept:
        raise ValueError(f"{target} has no {' or '.join(lacking)} hand: no bone of {target} is mapped to a "
                         f"{' or '.join(lacking)} finger")
    warnings = [f"{target} has no {side} hand (no {side} finger bone is mapped): the captured {side} hand "
                "is not retargeted" for side in lacking]
    return kept, warnings


def _take_frames(sources: list) -> np.ndarray:
    """Every whole frame from the first to the last key of any source rig."""
    ranges = []
    for source in sources:
        try:
            ranges.append(rig_data.keyed_range(rig_data.active_fcurves(source)))
        except ValueError:
            raise ValueError(f"{source.name}: the capture rig has no keyed animation (no active action)") from None
    return np.arange(min(r[0] for r in ranges), max(r[1] for r in ranges) + 1, dtype=np.float64)


def _bone_warnings(target, bones: list) -> list:
    """Keyed bones whose keys may not show: bones with constraints or that ignore their parent's turn."""
    out = []
    for name in bones:
        if len(target.pose.bones[name].constraints):
            out.append(f"{name} has constraints: they may override its keys")
        if not target.data.bones[name].use_inherit_rotation:
            out.append(f"{name} does not inherit its parent's rotation: its fingers may point elsewhere")
    return out


def capture_rigs_beside(rig: bpy.types.Object) -> list:
    """``rig`` and the capture rigs of the other side in its collections (both hands of a take)."""
    side = rig_data.capture_rig_side(rig)
    out = [rig]
    for collection in rig.users_collection:
        for obj in collection.objects:
            other = rig_data.capture_rig_side(obj)
            if other and other != side and obj not in out and all(
                    rig_data.capture_rig_side(o) != other for o in out):
                out.append(obj)
    return out

