"""In a real Blender (background), on a .blend that ``batch.py`` wrote: the expected hand rigs,
keyed on every frame of the clip.

    blender -b FILE.blend -P blender_check_blend.py -- SIDES FRAMES
"""

import os
import sys

import bpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from blender_checks import expect, finish, hand_rigs, keyed_frames, script_args  # noqa: E402

failures = []
sides, frames = script_args()
name = os.path.basename(bpy.data.filepath)
rigs = hand_rigs()
found = sorted(side for side, objs in rigs.items() for _ in objs)
expect(found == sorted(sides.split(",")), f"{name}: rigs {found}, expected {sorted(sides.split(','))}", failures)
every = set(range(1, int(frames) + 1))
for side, objs in rigs.items():
    for obj in objs:
        keyed = keyed_frames(obj)
        expect(every <= keyed, f"{name}: {obj.name} ({side}) keyed on all {frames} frames ({len(every & keyed)} keyed)",
               failures)
finish(failures)
