"""Write the current scene as .blend, .fbx or .glb, atomically (temporary file, then rename).

Export settings keep the animation exact: FBX bakes every frame with no curve simplification
(``bake_anim_simplify_factor=0``); glTF keeps every bone influence (``export_all_influences``)
and puts bones and shape keys of the active actions into one animation.
"""

from __future__ import annotations

import contextlib
import io
import os

import bpy

from . import quiet
from .output_files import atomic_output

FBX_SETTINGS = dict(
    use_selection=False, object_types={"ARMATURE", "MESH", "CAMERA"},
    use_mesh_modifiers=False,            # keep shape keys; the armature deforms on import
    mesh_smooth_type="FACE", add_leaf_bones=False,
    primary_bone_axis="Y", secondary_bone_axis="X", armature_nodetype="NULL",
    apply_unit_scale=True, global_scale=1.0,
    bake_anim=True, bake_anim_use_all_bones=True, bake_anim_use_nla_strips=False,
    bake_anim_use_all_actions=False, bake_anim_force_startend_keying=True,
    bake_anim_step=1.0, bake_anim_simplify_factor=0.0,
)

GLTF_SETTINGS = dict(
    export_format="GLB", export_yup=True, export_apply=False,
    export_texcoords=True, export_normals=True, export_materials="EXPORT", export_cameras=True,
    export_skins=True, export_all_influences=True, export_def_bones=False,
    export_morph=True, export_animations=True, export_animation_mode="ACTIVE_ACTIONS",
    export_force_sampling=True, export_frame_step=1, export_optimize_animation_size=False,
    export_anim_slide_to_zero=False, export_current_frame=False,
)

FORMATS = ("blend", "fbx", "glb")
_typing_caches_cleared_at_exit = False         # see _clear_typing_caches_at_exit


def format_of(path: str) -> str:
    """'blend', 'fbx' or 'glb' from the path's extension; ValueError for anything else."""
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext not in FORMATS:
        raise ValueError(f"{path}: unknown output type {ext!r} (use .blend, .fbx or .glb)")
    return ext


def write_scene(path: str, fbx_settings: dict = None) -> str:
    """Write the whole current file/scene to ``path`` in the format its extension names.

    ``fbx_settings`` override ``FBX_SETTINGS`` for an .fbx (the retarget exports the selected
    armature with one take per NLA strip)."""
    fmt = format_of(path)
    path = os.path.abspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    chatter = io.StringIO()                            # Blender's "Saved copy as <temporary name>" and the like
    with atomic_output(path, create=False) as tmp:     # no file yet: Blender would keep it as a .blend1 backup
        with contextlib.redirect_stdout(chatter):
            if fmt == "fbx":
                _write_fbx(tmp, fbx_settings)
            else:
                _WRITERS[fmt](tmp)
    if not quiet.is_quiet() and chatter.getvalue():
        print(chatter.getvalue().replace(os.path.basename(tmp), os.path.basename(path)), end="")
    return path


def _write_blend(path: str) -> None:
    bpy.ops.wm.save_as_mainfile(filepath=path, copy=True, check_existing=False)


def _write_fbx(path: str, overrides: dict = None) -> None:
    bpy.ops.export_scene.fbx(filepath=path, check_existing=False, **{**FBX_SETTINGS, **(overrides or {})})


def _write_glb(path: str) -> None:
    bpy.ops.export_scene.gltf(filepath=path, check_existing=False, **GLTF_SETTINGS)
    _clear_typing_caches_at_exit()


def _clear_typing_caches_at_exit() -> None:
    """Let the bpy 4.x module shut down cleanly after a glTF export.

    The exporter leaves objects in ``typing``'s caches that keep the ``bpy`` module alive past
    the interpreter's shutdown. bpy 4.x shuts Blender down only when that module is freed, so
    its C++ destructors then run against a finished Python: bpy 4.2 crashes at exit (status 139)
    and bpy 4.5 can hang there, after everything was written. Clearing those caches first
    (``atexit`` runs before modules are torn down) fixes it; bpy 5.0 shuts down another way.
    """
    global _typing_caches_cleared_at_exit
    if bpy.app.version >= (5, 0, 0) or _typing_caches_cleared_at_exit:
        return
    import atexit
    import typing

    def clear() -> None:
        for cache_clear in getattr(typing, "_cleanups", ()):
            cache_clear()

    atexit.register(clear)
    _typing_caches_cleared_at_exit = True


_WRITERS = {"blend": _write_blend, "fbx": _write_fbx, "glb": _write_glb}
