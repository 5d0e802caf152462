"""handcap: 3D hand capture from photos and videos, as rigged and animated hands in Blender.

This package is a Blender extension (see blender_manifest.toml) and also the home of the
capture file format, which the engine (core) imports without Blender. So nothing here
imports bpy at module level: ``register``/``unregister`` import the Blender side lazily.

Modules: capture_format (the file format; numpy only), naming / rig_math / camera_math
(names and numpy math), build_mesh / build_armature / build_camera / keyframes (scene
building blocks), import_capture (capture -> scene), export_scene (.blend/.fbx/.glb),
convert + batch (headless), engine (the engine process), regions (hand boxes given instead
of detection), views_input (several views and their cameras file, checked before the engine runs),
exit_codes / output_files / quiet (the rule every command follows: exit codes,
atomic outputs, no third-party noise; shared with the engine), preferences / properties /
ops_import / ops_regions / ops_views / ops_estimate / ops_retarget / panel / addon (the UI); retarget/ (the
capture onto the user's own rig: Rigify, Mixamo, Unreal/MetaHuman, VRM, custom names).
"""


NO_NUMPY = ("Hand Capture needs numpy in Blender's Python, and this Blender has none. Blender's own builds "
            "bundle it; a Linux distribution's Blender uses the system Python: install its numpy package "
            "(Debian/Ubuntu: sudo apt install python3-numpy; Fedora: sudo dnf install python3-numpy), then "
            "enable the add-on again")


def register():
    try:
        import numpy  # noqa: F401  (every module of the add-on needs it)
    except ImportError:
        raise ImportError(NO_NUMPY) from None
    from . import addon
    addon.register()


def unregister():
    from . import addon
    addon.unregister()
