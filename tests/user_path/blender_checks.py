"""Checks on what the add-on built in a real Blender, written apart from the add-on's own code:
which hand rigs a scene holds, their sides, and the frames their actions key (Blender 4.2 to 5.x:
legacy ``Action.fcurves`` before 4.4, layered actions' channel bags from 4.4, only those in 5.0+)."""

from __future__ import annotations

import json
import os
import sys

import bpy

ADDON = "bl_ext.user_default.handcap"


def script_args() -> list:
    """The arguments after ``--`` on Blender's command line."""
    return sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []


def hand_rigs(scene=None) -> dict:
    """{side: [armature objects]} of the scene's hand rigs, the side read from the wrist bone's name."""
    rigs = {}
    for obj in (scene or bpy.context.scene).objects:
        if obj.type != "ARMATURE":
            continue
        for side, bone in (("right", "hand.R"), ("left", "hand.L")):
            if bone in obj.data.bones:
                rigs.setdefault(side, []).append(obj)
    return rigs


def action_fcurves(action, slot=None) -> list:
    """Every F-curve of ``action`` (of ``slot`` when the action is layered)."""
    layers = getattr(action, "layers", None)
    if layers:
        curves = []
        for layer in layers:
            for strip in layer.strips:
                for bag in strip.channelbags:
                    if slot is None or bag.slot == slot:
                        curves.extend(bag.fcurves)
        return curves
    return list(getattr(action, "fcurves", ()))


def keyed_frames(obj) -> set:
    """Whole frames on which every pose-bone F-curve of ``obj``'s action has a key."""
    data = obj.animation_data
    if data is None or data.action is None:
        return set()
    curves = [c for c in action_fcurves(data.action, getattr(data, "action_slot", None))
              if c.data_path.startswith("pose.bones")]
    if not curves:
        return set()
    frames = [set(round(k.co[0]) for k in c.keyframe_points) for c in curves]
    return set.intersection(*frames)


def expect(condition: bool, what: str, failures: list) -> None:
    print(("ok: " if condition else "FAILED: ") + what, flush=True)
    if not condition:
        failures.append(what)


def write_result(path: str, result: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".part", "w") as f:
        json.dump(result, f, indent=1)
    os.replace(path + ".part", path)


def finish(failures: list) -> None:
    """Exit Blender with 1 when a check failed (``--python-exit-code`` only covers exceptions)."""
    print(f"{len(failures)} check(s) failed" if failures else "all checks passed", flush=True)
    sys.stdout.flush()
    os._exit(1 if failures else 0)
