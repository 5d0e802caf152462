"""Capture file -> scene: a collection per capture with its camera and one rig per hand track.

Loading validates the whole file first (``capture_format.load_capture``), so an invalid file
raises ``CaptureError`` before anything in the scene changes; should building itself fail,
everything created so far is removed again.

Frames: source frame index i is Blender frame i + 1 (Blender starts at 1). Frames marked
invalid (no hand seen) get no keys: the F-curves interpolate linearly across the gap. Frames the
engine filled over a short gap (``interpolated``) are keyed as BREAKDOWN keys.

A multi-view capture (``Capture.views``) gets one camera per view, each with its own photo or
video as background, placed around the hands by the views' R and t (``build_camera.place_view_camera``);
the scene camera stays the first view's.
"""

from __future__ import annotations

import dataclasses

import bpy
import numpy as np

from . import build_armature, build_camera, build_mesh, clear_view, keyframes, naming, rig_math
from .capture_format import Capture, CaptureError, HandTrack, load_capture

# bpy.data collections an import may add to (used to undo a failed build).
_ID_COLLECTIONS = ("objects", "meshes", "armatures", "cameras", "actions", "materials",
                   "images", "movieclips", "collections")


@dataclasses.dataclass
class ImportResult:
    """What one capture put in the scene."""

    collection: bpy.types.Collection
    camera: bpy.types.Object
    rigs: list                                   # [(armature object, mesh object)] per track
    warnings: list = dataclasses.field(default_factory=list)
    cameras: list = dataclasses.field(default_factory=list)   # every view's camera; cameras[0] is camera


def import_files(paths: list, context) -> list:
    """Load and validate every file first, then build each into the context's scene.

    Raises CaptureError (scene untouched) if any file is invalid.
    """
    return import_captures([load_capture(path) for path in paths], paths, context)


def import_captures(captures: list, paths: list, context) -> list:
    """Build already loaded captures, each where nothing of the scene hides its photo
    (``clear_view``: at the origin, or moved down below the scene's objects), then fit the
    scene's frame range, fps and camera.

    All or nothing: if any build fails, every datablock made so far is removed again.
    """
    if context.mode != "OBJECT":
        bpy.ops.object.mode_set(mode="OBJECT")
    before = _id_snapshot()
    boxes = clear_view.scene_boxes(context)                   # the user's scene, before the captures
    try:
        results = [build_capture(capture, context, path) for capture, path in zip(captures, paths)]
        for capture, result in zip(captures, results):
            clear_view.place_clear(result.camera, result.rigs, boxes, capture.K, capture.image_size,
                                   others=tuple(result.cameras[1:]))
    except BaseException:
        _remove_new_ids(before)
        raise
    fit_scene(context.scene, captures, results[-1].camera if results else None)
    return results


def build_capture(capture: Capture, context, capture_path: str = "") -> ImportResult:
    """Build one capture into a new collection named after its source (see module doc).

    Object mode is required; ``import_captures`` wraps this with the clean-up on failure.
    """
    scene, view_layer = context.scene, context.view_layer
    title = naming.capture_title(capture.source_path, capture_path)
    collection = bpy.data.collections.new(title)
    scene.collection.children.link(collection)
    if capture.views is None:
        camera = build_camera.new_camera_object(f"{title} camera", collection, capture.K,
                                                capture.image_size)
        warnings = build_camera.add_background(camera, capture.source_path)
        cameras = [camera]
    else:
        cameras, warnings = build_view_cameras(capture, collection)
        camera = cameras[0]
    rigs = [build_track(track, t, title, collection, view_layer)
            for t, track in enumerate(capture.tracks)]
    if not rigs:
        warnings.append(f"{title}: the capture holds no hand")
    for armature, mesh in rigs:
        mesh.select_set(True)
        armature.select_set(True)
    if rigs:
        view_layer.objects.active = rigs[0][0]
    return ImportResult(collection, camera, rigs, warnings, cameras)


def build_view_cameras(capture: Capture, collection: bpy.types.Collection) -> tuple:
    """One camera per view of ``capture.views``, named after its source, with its own intrinsics
    and background (offset by its ``frame_offset``), placed relative to view 0's camera (at the
    origin: the place ``clear_view`` may later move them all from). Returns (cameras, warnings)."""
    views = capture.views
    names = naming.view_camera_names(views.source_path)
    cameras, warnings = [], []
    for c in range(views.num_views):
        first = c == 0                 # view 0 is the capture's own camera: its top-level K, size, source
        K, size = (capture.K, capture.image_size) if first else (views.K[c], views.image_size[c])
        source = capture.source_path if first else str(views.source_path[c])
        camera = build_camera.new_camera_object(names[c], collection, K, size)
        camera[build_camera.VIEW_PROPERTY] = c
        if not first:
            build_camera.place_view_camera(camera, cameras[0], views.R[c], views.t[c])
        warnings += build_camera.add_background(camera, source, int(views.frame_offset[c]))
        cameras.append(camera)
    return cameras, warnings


def build_track(track: HandTrack, index: int, title: str, collection: bpy.types.Collection,
                view_layer: bpy.types.ViewLayer) -> tuple:
    """One rigged, skinned, keyed hand: returns (armature object, mesh object)."""
    bones = naming.bone_names(track.joint_names, track.parents, track.side)
    if len(set(bones)) != len(bones):
        raise CaptureError(f"track {index}: joint names are not unique")
    arm_name, mesh_name = naming.rig_names(title, index, track.side, track.person)
    heads = np.asarray(track.rest_joints, np.float64)
    tails = rig_math.bone_tails(heads, track.parents, track.rest_vertices, track.skin_weights)
    palm = rig_math.palm_normal(heads, track.side, naming.is_mano_skeleton(track.parents))
    armature = build_armature.new_armature_object(
        arm_name, collection, heads, tails, rig_math.bone_z_axes(heads, tails, palm),
        track.parents, bones, view_layer)

    data = build_mesh.new_mesh_data(mesh_name, track.rest_vertices, track.faces, track.face_uvs)
    data.materials.append(build_mesh.skin_material())
    mesh = bpy.data.objects.new(mesh_name, data)
    collection.objects.link(mesh)
    mesh.parent = armature                      # identity parent inverse: armature space
    build_mesh.add_vertex_groups(mesh, bones, track.skin_weights)
    key_names = None
    if track.pose_correctives is not None:
        key_names = naming.corrective_names(bones)
        build_mesh.add_corrective_shape_keys(mesh, track.rest_vertices, track.pose_correctives,
                                             key_names)
    build_mesh.add_armature_modifier(mesh, armature)
    animate_track(track, armature, mesh, bones, key_names)
    return armature, mesh


def animate_track(track: HandTrack, armature: bpy.types.Object, mesh: bpy.types.Object,
                  bones: list, key_names: list = None) -> bpy.types.Action:
    """Key the valid frames of a track (sorted, one key per source frame; filled frames as BREAKDOWN keys)."""
    frames, sel = keyed_frames(track.frame_index, track.valid)
    rest = build_armature.bone_rest_rotations(armature)
    pose = np.asarray(track.pose, np.float64)[sel]
    values = rig_math.corrective_features(pose) if key_names else None
    return keyframes.key_rig(
        f"{armature.name} action", armature, bones, frames,
        rig_math.basis_quaternions(pose, rest), rig_math.root_locations(track.transl[sel], rest[0]),
        mesh, key_names, values, breakdown=np.asarray(track.interpolated, bool)[sel])


def keyed_frames(frame_index: np.ndarray, valid: np.ndarray) -> tuple:
    """(Blender frames (M,), row indices (M,)) of the valid rows, sorted, duplicates dropped."""
    rows = np.flatnonzero(np.asarray(valid, bool))
    _, first = np.unique(np.asarray(frame_index)[rows], return_index=True)
    rows = rows[first]
    return np.asarray(frame_index)[rows].astype(np.float64) + 1.0, rows


def fit_scene(scene: bpy.types.Scene, captures: list, camera: bpy.types.Object = None) -> None:
    """Scene frame range over all tracks, fps from the source, render size from the camera's K."""
    indices = [np.asarray(t.frame_index) for c in captures for t in c.tracks if len(t.frame_index)]
    if indices:
        all_frames = np.concatenate(indices)
        scene.frame_start = int(all_frames.min()) + 1
        scene.frame_end = int(all_frames.max()) + 1
    fps = next((c.fps for c in captures if c.fps > 0), 0.0)
    if fps > 0:
        scene.render.fps = max(1, int(round(fps)))
        scene.render.fps_base = scene.render.fps / fps
    if captures and camera is not None:
        build_camera.match_render_settings(scene, captures[-1].K, captures[-1].image_size)
        scene.camera = camera
    scene.frame_set(scene.frame_start)


def _id_snapshot() -> dict:
    return {name: {i.session_uid for i in getattr(bpy.data, name)} for name in _ID_COLLECTIONS}


def _remove_new_ids(before: dict) -> None:
    """Remove every datablock created since ``before`` (a failed build leaves nothing)."""
    if bpy.context.mode != "OBJECT":
        bpy.ops.object.mode_set(mode="OBJECT")
    new = [i for name in _ID_COLLECTIONS for i in getattr(bpy.data, name)
           if i.session_uid not in before[name]]
    bpy.data.batch_remove(new)
