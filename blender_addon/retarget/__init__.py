"""Retarget a capture onto the user's own rig (Rigify, Mixamo, Unreal/MetaHuman, VRM, custom names).

name_mapping (which target bone plays which hand joint; presets; no bpy), rotations and
bone_transfer (the maths; numpy only), rig_data (armatures read into numpy), keys (the take as
keys and an NLA strip), retarget_rig (the entry point), properties (the panel's settings),
headless (``handcap retarget`` and batch.py). Nothing here is imported by the package's
``__init__``: the Blender side loads it when the add-on registers.
"""
