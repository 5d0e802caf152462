"""The hand mesh: geometry, UVs, smooth shading, skin material, vertex groups, correctives.

All bulk data goes through ``foreach_set``. Coordinates are the armature's space (the
capture's camera space, metres); the mesh object is parented to the armature with an
identity transform, so it needs no transform of its own.
"""

from __future__ import annotations

import bpy
import numpy as np

SKIN_MATERIAL = "Hand skin"
SKIN_COLOR = (0.80, 0.56, 0.45, 1.0)
CORRECTIVE_SLIDER = 2.0   # pose-corrective weights are entries of R - I, within [-2, 1]


def new_mesh_data(name: str, vertices: np.ndarray, faces: np.ndarray,
                  face_uvs: np.ndarray = None) -> bpy.types.Mesh:
    """A triangle mesh (V, 3) / (F, 3) with a UV map and smooth shading.

    Without ``face_uvs`` (F, 3, 2) in the file, UVs come from a planar projection of the rest
    mesh onto its two widest axes, so texture painting works out of the box.
    """
    faces = np.asarray(faces, np.int32)
    n_faces = len(faces)
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(len(vertices))
    mesh.vertices.foreach_set("co", np.asarray(vertices, np.float32).ravel())
    mesh.loops.add(3 * n_faces)
    mesh.loops.foreach_set("vertex_index", faces.ravel())
    mesh.polygons.add(n_faces)
    mesh.polygons.foreach_set("loop_start", np.arange(0, 3 * n_faces, 3, dtype=np.int32))
    mesh.update(calc_edges=True)
    uvs = face_uvs if face_uvs is not None else planar_uvs(vertices, faces)
    mesh.uv_layers.new(name="UVMap").uv.foreach_set("vector", np.asarray(uvs, np.float32).ravel())
    mesh.shade_smooth()
    mesh.validate()
    return mesh


def planar_uvs(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Per-corner UVs (F, 3, 2) in [0, 1]: the rest mesh projected on its two widest axes."""
    v = np.asarray(vertices, np.float64)
    lo, hi = v.min(axis=0), v.max(axis=0)
    axes = np.argsort(hi - lo)[::-1][:2]
    uv = (v[:, axes] - lo[axes]) / np.maximum((hi - lo)[axes].max(), 1e-9)
    return uv[np.asarray(faces)]


def skin_material() -> bpy.types.Material:
    """The shared skin material (Principled BSDF with a little subsurface), made once."""
    mat = bpy.data.materials.get(SKIN_MATERIAL)
    if mat is not None:
        return mat
    mat = bpy.data.materials.new(SKIN_MATERIAL)
    mat.diffuse_color = SKIN_COLOR          # viewport / Workbench colour
    mat.roughness = 0.5
    if mat.node_tree is None:               # Blender < 5 creates no node tree by default
        mat.use_nodes = True
    bsdf = mat.node_tree.nodes.get("Principled BSDF")
    if bsdf is not None:
        bsdf.inputs["Base Color"].default_value = SKIN_COLOR
        bsdf.inputs["Roughness"].default_value = 0.5
        bsdf.inputs["Subsurface Weight"].default_value = 0.15
        bsdf.inputs["Subsurface Radius"].default_value = (0.010, 0.004, 0.002)
    return mat


def add_vertex_groups(obj: bpy.types.Object, bone_names: list, weights: np.ndarray) -> None:
    """One vertex group per bone from the dense skinning weights (V, J).

    Blender has no bulk setter for deform weights, so each group gets one ``add`` call per
    distinct weight value (rigid regions, weight 1.0, go in a single call).
    """
    weights = np.asarray(weights, np.float32)
    for j, name in enumerate(bone_names):
        group = obj.vertex_groups.new(name=name)
        idx = np.flatnonzero(weights[:, j] > 0.0)
        values, inverse = np.unique(weights[idx, j], return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        splits = np.cumsum(np.bincount(inverse, minlength=len(values)))[:-1]
        for value, members in zip(values.tolist(), np.split(idx[order], splits)):
            group.add(members.tolist(), value, "REPLACE")


def add_corrective_shape_keys(obj: bpy.types.Object, rest_vertices: np.ndarray,
                              correctives: np.ndarray, names: list) -> None:
    """A Basis key plus one shape key per corrective feature, slider range -2..2.

    ``correctives`` is ((J-1)*9, V, 3) metres per unit feature; key k holds rest + offset k,
    so a key value of c_k adds ``c_k * correctives[k]`` before skinning (MANO's posedirs).
    """
    obj.shape_key_add(name="Basis", from_mix=False)
    rest = np.asarray(rest_vertices, np.float32)
    for name, offset in zip(names, np.asarray(correctives, np.float32)):
        key = obj.shape_key_add(name=name, from_mix=False)
        key.data.foreach_set("co", (rest + offset).ravel())
        key.slider_min = -CORRECTIVE_SLIDER
        key.slider_max = CORRECTIVE_SLIDER
        key.value = 0.0


def add_armature_modifier(obj: bpy.types.Object, armature: bpy.types.Object) -> bpy.types.Modifier:
    """Plain linear blend skinning from the vertex groups (no envelopes, no preserve volume)."""
    mod = obj.modifiers.new(name="Armature", type="ARMATURE")
    mod.object = armature
    mod.use_vertex_groups = True
    mod.use_bone_envelopes = False
    mod.use_deform_preserve_volume = False
    return mod
