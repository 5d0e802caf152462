"""Headless retarget: capture files onto an armature in a .blend file -> OUT.blend or OUT.fbx.

``handcap retarget CAPTURE... --rig RIG.blend [--armature NAME] -o OUT`` and batch.py's ``--rig``.
RIG.blend is opened, each capture is built into it (``import_capture.build_capture``) and
retargeted onto the armature as its own take (an NLA track and strip named after the capture),
then the capture's own objects are removed again. OUT.blend is RIG.blend with the takes added;
OUT.fbx holds the armature and the meshes it deforms, one FBX take per capture.
"""

from __future__ import annotations

import dataclasses
import os

import bpy

from .. import export_scene, import_capture, naming
from ..capture_format import load_capture
from . import name_mapping, retarget_rig
from .bone_transfer import TransferOptions

FORMATS = ("blend", "fbx")
# FBX: the target and its meshes only, every NLA strip its own take, every frame baked exactly.
FBX_TAKES = dict(use_selection=True, object_types={"ARMATURE", "MESH"}, bake_anim_use_nla_strips=True,
                 bake_anim_use_all_actions=False)


@dataclasses.dataclass
class RetargetJob:
    """Where the takes go: the rig file, the armature in it (found when empty), the options, and
    which captured hand (auto: each one the armature has a hand for; ``retarget_rig.keyed_sides``)."""

    rig_path: str
    armature: str = ""
    mapping_path: str = ""
    options: TransferOptions = dataclasses.field(default_factory=TransferOptions)
    hand: str = "auto"


def output_format(path: str) -> str:
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext not in FORMATS:
        raise ValueError(f"{path}: a retarget writes .blend or .fbx, not {ext or 'a file without an extension'!r}")
    return ext


def find_armature(name: str = "") -> bpy.types.Object:
    """The armature called ``name``, or the only one whose bone names show a hand (handcap's own
    capture rigs aside); ValueError."""
    from . import rig_data
    armatures = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    if name:
        for obj in armatures:
            if obj.name == name:
                return obj
        raise ValueError(f"no armature named {name!r} (armatures: {', '.join(o.name for o in armatures) or 'none'})")
    with_hands = [o for o in armatures if not rig_data.capture_rig_side(o) and retarget_rig.detect(o).sides_found()]
    if len(with_hands) != 1:
        found = ", ".join(o.name for o in with_hands) or "none"
        raise ValueError(f"{len(with_hands)} armatures with hand bones ({found}): name one with --armature")
    return with_hands[0]


def retarget_captures(capture_paths: list, job: RetargetJob, out_path: str) -> tuple:
    """Every capture (one take each) onto ``job``'s armature, written to ``out_path``.

    Returns (path written, reports). Raises ValueError/CaptureError/OSError before writing
    anything when an input, the rig or the mapping is wrong.
    """
    fmt = output_format(out_path)
    captures = [load_capture(p) for p in capture_paths]
    mapping = name_mapping.load_preset(job.mapping_path) if job.mapping_path else None
    if not os.path.isfile(job.rig_path):
        raise ValueError(f"{job.rig_path}: no such file")
    bpy.ops.wm.open_mainfile(filepath=os.path.abspath(job.rig_path), load_ui=False)
    target = find_armature(job.armature)
    if target.mode != "OBJECT" or bpy.context.mode != "OBJECT":
        bpy.context.view_layer.objects.active = target
        bpy.ops.object.mode_set(mode="OBJECT")
    reports, frames = [], []
    for capture, path in zip(captures, capture_paths):
        built = import_capture.build_capture(capture, bpy.context, path)
        try:
            rigs = [armature for armature, _ in built.rigs]
            if not rigs:
                raise ValueError(f"{path}: the capture holds no hand")
            take = naming.capture_title(capture.source_path, path)
            reports.append(retarget_rig.retarget(rigs, target, mapping, job.options, take, job.hand))
            frames.append(reports[-1].frames)
        finally:
            _remove_built(built)
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = min(f[0] for f in frames), max(f[1] for f in frames)
    if fmt == "fbx":
        _select_only([target, *[c for c in target.children_recursive if c.type == "MESH"]])
    return export_scene.write_scene(out_path, fbx_settings=FBX_TAKES), reports


def _remove_built(built) -> None:
    """Remove what ``build_capture`` made: its collection, objects, their data and actions."""
    ids = [built.collection, built.camera]
    for armature, mesh in built.rigs:
        ids += [armature, mesh, armature.data, mesh.data]
        for owner in (armature, mesh.data.shape_keys):
            if owner is not None and owner.animation_data and owner.animation_data.action:
                ids.append(owner.animation_data.action)
    if built.camera is not None:
        ids.append(built.camera.data)
    for obj in [built.camera, *[o for rig in built.rigs for o in rig]]:
        if obj is not None:
            obj.select_set(False)       # else the view layer lists them as selected None: the next build fails
    bpy.data.batch_remove([i for i in dict.fromkeys(ids) if i is not None])


def _select_only(objects: list) -> None:
    for obj in bpy.context.view_layer.objects:
        obj.select_set(obj in objects)


def retarget_many(capture_paths: list, job: RetargetJob, out_path: str, log=print, log_error=None) -> int:
    """``handcap retarget``: print what happened (errors and warnings on stderr, each warning
    once however many takes give it); returns the exit code."""
    import sys
    from .. import exit_codes
    log_error = log_error or (lambda line: print(line, file=sys.stderr, flush=True))
    try:
        output_format(out_path)
    except ValueError as e:
        log_error(f"handcap retarget: error: {e}")
        return exit_codes.USAGE
    try:
        written, reports = retarget_captures(capture_paths, job, out_path)
    except Exception as e:                      # a bad capture, rig or mapping: nothing is written
        log_error(f"handcap retarget: error: {' '.join(str(e).split()) or type(e).__name__}")
        return exit_codes.FAILED
    warned = set()
    for report in reports:
        log(f"handcap retarget: {report.summary()}")
        for line in report.unmatched:
            log(f"  note: {line}")
        for line in report.warnings:
            if line not in warned:
                warned.add(line)
                log_error(f"handcap retarget: warning: {line}")
    log(f"handcap retarget: {len(reports)} take(s) -> {written}")
    return exit_codes.OK
