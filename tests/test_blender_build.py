"""Capture file -> Blender scene, checked against core's torch hand layer (bpy 5.0 module)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tests.test_blender_support import (bpy_or_skip, cv_to_world, has_slotted_actions, model_capture, posed_joints,
                                        reset_scene, save, scene_fingerprint, slot_fcurves, toy_capture,
                                        world_vertices, write_png)

bpy = bpy_or_skip()

import blender_addon  # noqa: E402
from blender_addon import export_scene, import_capture  # noqa: E402
from blender_addon.capture_format import CaptureError, load_capture  # noqa: E402
from blender_addon.naming import CORRECTIVES_GROUP  # noqa: E402

TOL_M = 1e-4          # 0.1 mm
FRAMES = 8


@pytest.fixture(scope="module", autouse=True)
def addon():
    blender_addon.register()
    yield
    blender_addon.unregister()


@pytest.fixture(scope="module")
def hands(tmp_path_factory):
    """A right and a left hand, 8 prior-sampled frames each, and the layer's vertices."""
    folder = tmp_path_factory.mktemp("hands")
    capture, refs = model_capture(("right", "left"), FRAMES, seed=1,
                                  source_path=write_png(folder / "studio_take.png"))
    return save(capture, folder / "hands.npz"), capture, refs


def build(path):
    reset_scene()
    return import_capture.import_files([path], bpy.context)[0]


def max_error(rigs, refs, frames=range(1, FRAMES + 1)) -> float:
    scene = bpy.context.scene
    return max(np.abs(world_vertices(mesh, scene, f) - cv_to_world(ref[f - 1])).max()
               for (_, mesh), ref in zip(rigs, refs) for f in frames)


def test_rig_matches_hand_layer_right_and_left(hands):
    path, capture, refs = hands
    result = build(path)
    assert [t.side for t in capture.tracks] == ["right", "left"]
    err = max_error(result.rigs, refs)
    print(f"max |Blender - HandLayer| over {FRAMES} frames, right+left: {err * 1e3:.5f} mm")
    assert err < TOL_M


def test_pose_correctives_as_shape_keys_match_hand_layer(tmp_path):
    capture, refs = model_capture(("right", "left"), 5, correctives=True, seed=2)
    result = build(save(capture, tmp_path / "corr.npz"))
    for _, mesh in result.rigs:
        blocks = mesh.data.shape_keys.key_blocks
        assert len(blocks) == 1 + 135 and blocks[0].name == "Basis"
        assert all(k.slider_min <= -2 and k.slider_max >= 2 for k in blocks[1:])
        assert mesh.data.shape_keys.use_relative
        # one F-curve per corrective, keyed on every frame, grouped apart from the bones
        fcurves = slot_fcurves(mesh.data.shape_keys.animation_data)
        assert sorted(fc.data_path for fc in fcurves) == sorted(f'key_blocks["{k.name}"].value' for k in blocks[1:])
        assert all(fc.group is not None and fc.group.name == CORRECTIVES_GROUP for fc in fcurves)
        assert all([k.co[0] for k in fc.keyframe_points] == [1, 2, 3, 4, 5] for fc in fcurves)
    err = max_error(result.rigs, refs, range(1, 6))
    print(f"max |Blender - HandLayer| with pose correctives: {err * 1e3:.5f} mm")
    assert err < TOL_M
    # without the shape keys the error is large: the keys really do the work
    for _, mesh in result.rigs:
        mesh.shape_key_clear()
    assert max_error(result.rigs, refs, range(1, 6)) > 10 * TOL_M


def test_bones_named_like_rigify_tails_toward_children(hands):
    path, capture, _ = hands
    result = build(path)
    for (arm, _), track in zip(result.rigs, capture.tracks):
        s = ".R" if track.side == "right" else ".L"
        names = [b.name for b in arm.data.bones]
        assert names[0] == "hand" + s and names[13:] == [f"thumb.0{i}{s}" for i in (1, 2, 3)]
        assert names[7:10] == [f"f_pinky.0{i}{s}" for i in (1, 2, 3)]
        bones = arm.data.bones
        rest = np.asarray(track.rest_joints, np.float64)
        heads = np.array([b.head_local for b in bones])
        tails = np.array([b.tail_local for b in bones])
        np.testing.assert_allclose(heads, rest, atol=1e-6)
        for j, p in enumerate(track.parents):
            if p >= 0:
                assert bones[j].parent.name == names[p]
        for j in (1, 2, 4, 5, 7, 8, 10, 11, 13, 14):            # one child: the next joint
            np.testing.assert_allclose(tails[j], rest[j + 1], atol=1e-6)
        np.testing.assert_allclose(tails[0], rest[4], atol=1e-6)  # wrist -> middle finger
        for j in (3, 6, 9, 12, 15):                              # tips continue the finger
            d = (tails[j] - heads[j]) / np.linalg.norm(tails[j] - heads[j])
            parent_d = (rest[j] - rest[j - 1]) / np.linalg.norm(rest[j] - rest[j - 1])
            assert d @ parent_d > 0.999


@pytest.mark.parametrize("side", ["right", "left"])
def test_finger_curl_is_rotation_about_local_x(hands, side):
    path, capture, _ = hands
    result = build(path)
    t = [tr.side for tr in capture.tracks].index(side)
    arm = result.rigs[t][0]
    rest = np.asarray(capture.tracks[t].rest_joints, np.float64)
    sign = 1.0 if side == "right" else -1.0
    palm = sign * np.cross(rest[1] - rest[0], rest[7] - rest[0])        # toward the palm
    palm /= np.linalg.norm(palm)
    arm.animation_data.action = None
    for pb in arm.pose.bones:
        pb.rotation_quaternion = (1, 0, 0, 0)
        pb.location = (0, 0, 0)
    bpy.context.view_layer.update()
    for j, pb in enumerate(arm.pose.bones):
        if j == 0:
            continue
        x_axis = np.array(pb.bone.matrix_local)[:3, 0]
        assert abs(x_axis @ palm) < 0.35, pb.name       # curl axis lies across the palm
        before = np.array(pb.tail)
        pb.rotation_mode = "XYZ"
        pb.rotation_euler = (0.6, 0, 0)                 # +X: curl
        bpy.context.view_layer.update()
        moved = np.array(pb.tail) - before              # armature (= camera) space
        pb.rotation_euler = (0, 0, 0)
        pb.rotation_mode = "QUATERNION"
        bpy.context.view_layer.update()
        assert moved @ palm > 0.4 * np.linalg.norm(moved), pb.name


def test_mesh_uvs_material_weights_and_modifier(hands):
    path, capture, _ = hands
    result = build(path)
    arm, mesh = result.rigs[0]
    track = capture.tracks[0]
    me = mesh.data
    assert len(me.vertices) == len(track.rest_vertices) and len(me.polygons) == len(track.faces)
    corners = np.empty(len(me.loops), np.int32)
    me.loops.foreach_get("vertex_index", corners)
    np.testing.assert_array_equal(corners.reshape(-1, 3), track.faces)
    uv = np.empty(len(me.loops) * 2, np.float32)
    me.uv_layers.active.uv.foreach_get("vector", uv)
    np.testing.assert_allclose(uv.reshape(-1, 3, 2), track.face_uvs, atol=1e-6)
    smooth = np.empty(len(me.polygons), bool)
    me.polygons.foreach_get("use_smooth", smooth)
    assert smooth.all()
    assert me.materials[0].name == "Hand skin" and me.materials[0].node_tree is not None
    weights = np.zeros_like(track.skin_weights)
    for v in me.vertices:
        for g in v.groups:
            weights[v.index, g.group] = g.weight
    assert [g.name for g in mesh.vertex_groups] == [b.name for b in arm.data.bones]
    np.testing.assert_allclose(weights, track.skin_weights, atol=1e-7)
    mod = mesh.modifiers["Armature"]
    assert mod.object == arm and mod.use_vertex_groups
    assert not mod.use_bone_envelopes and not mod.use_deform_preserve_volume
    assert mesh.parent == arm and not me.shape_keys          # the open model has no correctives


def test_keyframes_slotted_action_linear_one_hemisphere(hands):
    path, capture, _ = hands
    result = build(path)
    arm, _ = result.rigs[0]
    action = arm.animation_data.action
    if has_slotted_actions():                           # Blender 4.4 on: one slot per datablock
        assert action.is_action_layered and arm.animation_data.action_slot is not None
    fcurves = slot_fcurves(arm.animation_data)
    assert len(fcurves) == 3 + 16 * 4
    # each bone's channels in a group named after the bone (the root's location with the root's rotation)
    for fc in fcurves:
        bone = fc.data_path.split('"')[1]
        assert fc.group is not None and fc.group.name == bone, fc.data_path
    assert fcurves[0].data_path == f'pose.bones["{arm.pose.bones[0].name}"].location'
    for fc in fcurves:
        co = np.empty(len(fc.keyframe_points) * 2, np.float32)
        fc.keyframe_points.foreach_get("co", co)
        np.testing.assert_array_equal(co[0::2], np.arange(1, FRAMES + 1))
        assert all(k.interpolation == "LINEAR" for k in fc.keyframe_points)
    for pb in arm.pose.bones:
        path_q = f'pose.bones["{pb.name}"].rotation_quaternion'
        q = np.stack([[fc.evaluate(f) for f in range(1, FRAMES + 1)]
                      for fc in sorted((fc for fc in fcurves if fc.data_path == path_q),
                                       key=lambda fc: fc.array_index)], 1)
        assert (np.sum(q[1:] * q[:-1], axis=1) >= 0).all()
        np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1, atol=1e-6)


def test_scene_collection_camera_and_fps(hands, tmp_path):
    path, capture, _ = hands
    result = build(path)
    scene = bpy.context.scene
    assert result.collection.name == "studio_take"            # named after the source
    assert {o.name for o in result.collection.objects} >= {"studio_take camera"}
    assert len(result.rigs) == 2
    assert (scene.frame_start, scene.frame_end) == (1, FRAMES)
    assert scene.render.fps == 30 and scene.render.fps_base == pytest.approx(1.0)
    assert scene.camera == result.camera
    assert (scene.render.resolution_x, scene.render.resolution_y) == (640, 480)
    bg = result.camera.data.background_images[0]
    assert result.camera.data.show_background_images and bg.source == "IMAGE"
    assert os.path.samefile(bpy.path.abspath(bg.image.filepath), capture.source_path)
    # NTSC rate, shifted frame indices
    ntsc = load_capture(path)
    ntsc.fps = 29.97
    for track in ntsc.tracks:
        track.frame_index = track.frame_index + 100
    build(save(ntsc, tmp_path / "ntsc.npz"))
    scene = bpy.context.scene
    assert (scene.frame_start, scene.frame_end) == (101, 100 + FRAMES)
    assert scene.render.fps / scene.render.fps_base == pytest.approx(29.97, rel=1e-6)


def test_camera_and_bones_line_up_with_the_capture(hands):
    """Posed bone heads sit on the rig's joints (posed by the numpy LBS of the capture's own rig);
    the Blender camera projects the capture's 21 keypoints (joints_3d) onto keypoints_2d."""
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector
    path, capture, _ = hands
    result = build(path)
    scene = bpy.context.scene
    W, H = capture.image_size
    for (arm, _), track in zip(result.rigs, capture.tracks):
        for f in (1, 4, FRAMES):
            scene.frame_set(f)
            heads = np.array([arm.matrix_world @ pb.head for pb in arm.pose.bones])
            np.testing.assert_allclose(heads, cv_to_world(posed_joints(track, [f - 1])[0]), atol=2e-6)
            pix = []
            for p in cv_to_world(track.joints_3d[f - 1]):
                c = world_to_camera_view(scene, result.camera, Vector(p))
                pix.append([c.x * W - 0.5, (1 - c.y) * H - 0.5])
            np.testing.assert_allclose(pix, track.keypoints_2d[f - 1], atol=0.01)


def camera_rays_hit(camera, scene, columns: int = 32, rows: int = 24) -> dict:
    """Looking through ``camera``: what the ray through each of columns x rows points of its view
    meets first (object name -> count; "" for nothing, where the background photo shows)."""
    from mathutils import Vector
    depsgraph = bpy.context.evaluated_depsgraph_get()
    frame = np.array([tuple(v) for v in camera.data.view_frame(scene=scene)])     # camera space
    lo, hi = frame.min(0), frame.max(0)
    M = np.array(camera.matrix_world)
    seen = {}
    for a in np.linspace(0.01, 0.99, columns):
        for b in np.linspace(0.01, 0.99, rows):
            local = np.array([lo[0] + a * (hi[0] - lo[0]), lo[1] + b * (hi[1] - lo[1]), frame[0, 2]])
            hit, _, _, _, obj, _ = scene.ray_cast(depsgraph, Vector(M[:3, 3]), Vector(M[:3, :3] @ local),
                                                  distance=camera.data.clip_end)
            name = getattr(obj, "original", obj).name if hit else ""
            seen[name] = seen.get(name, 0) + 1
    return seen


def test_default_scene_camera_sees_the_photo_behind_the_hands(hands):
    """Blender's default scene (its 2 m cube around the origin, where the capture's camera would
    sit): looking through the capture's camera every ray meets a hand or nothing, so the photo
    (the camera's background, drawn behind) shows around the hands; the hands keep their place in
    the camera's view; nothing of the user's scene moves or hides. An empty scene keeps the
    capture at the origin."""
    path, capture, _ = hands
    bpy.ops.wm.read_factory_settings(use_empty=False)
    users = {o.name: (np.array(o.matrix_world), o.visible_get()) for o in bpy.data.objects}
    assert "Cube" in users
    result = import_capture.import_files([path], bpy.context)[0]
    scene = bpy.context.scene
    for name, (matrix, visible) in users.items():
        obj = bpy.data.objects[name]
        assert np.allclose(np.array(obj.matrix_world), matrix) and obj.visible_get() == visible, name
    camera = result.camera
    background = camera.data.background_images[0]
    assert camera.data.show_background_images and background.display_depth == "BACK" and background.alpha == 1.0
    meshes = {mesh.name for _, mesh in result.rigs}
    for f in (1, FRAMES):
        scene.frame_set(f)
        seen = camera_rays_hit(camera, scene)
        assert set(seen) <= meshes | {""} and set(seen) & meshes and seen[""] > 0, seen
    to_camera = np.linalg.inv(np.array(camera.matrix_world))
    for (arm, _), track in zip(result.rigs, capture.tracks):
        heads = np.array([tuple(arm.matrix_world @ pb.head) for pb in arm.pose.bones])
        in_camera = heads @ to_camera[:3, :3].T + to_camera[:3, 3]
        np.testing.assert_allclose(in_camera, cv_to_world(posed_joints(track, [FRAMES - 1])[0]), atol=2e-6)
    empty = build(path)
    assert np.allclose(np.array(empty.camera.matrix_world), np.eye(4))


def test_capture_moves_only_for_what_its_camera_would_see():
    """A floor through the origin, a cube beside the view or above the camera: the capture stays
    at the origin; a cube below it: camera and hands go down, just below the lowest object."""
    from blender_addon import clear_view
    from tests.test_blender_support import default_K
    corners = clear_view.frustum_corners(default_K(), (640, 480), 0.01, 100.0)
    floor = np.array([[-10, -10, 0.0], [10, 10, 0.0]])
    beside = np.array([[200, -1, -60.0], [202, 1, -58.0]])
    above = np.array([[-1, -1, 0.5], [1, 1, 2.5]])
    below = np.array([[-1, -1, -3.0], [1, 1, -1.0]])
    for boxes in ([floor], [beside], [above], [floor, beside, above]):
        assert np.all(clear_view.clear_offset(corners, np.array(boxes)) == 0), boxes
    offset = clear_view.clear_offset(corners, np.array([floor, beside, below]))
    assert np.allclose(offset, [0, 0, -60.0 - clear_view.GAP_M])       # below the lowest box of all


def test_invalid_frames_get_no_keys(tmp_path):
    capture = toy_capture(frames=6, invalid_rows=(2, 3))
    result = build(save(capture, tmp_path / "gap.npz"))
    arm, _ = result.rigs[0]
    for fc in slot_fcurves(arm.animation_data):
        assert [k.co[0] for k in fc.keyframe_points] == [1, 2, 5, 6]
    assert (bpy.context.scene.frame_start, bpy.context.scene.frame_end) == (1, 6)


def test_interpolated_frames_are_breakdown_keys(tmp_path):
    capture = toy_capture(frames=6, invalid_rows=(4,))
    capture.tracks[0].interpolated = np.array([False, True, True, False, False, False])
    result = build(save(capture, tmp_path / "filled.npz"))
    arm, _ = result.rigs[0]
    for fc in slot_fcurves(arm.animation_data):
        assert [(k.co[0], k.type) for k in fc.keyframe_points] == [
            (1, "KEYFRAME"), (2, "BREAKDOWN"), (3, "BREAKDOWN"), (4, "KEYFRAME"), (6, "KEYFRAME")], fc.data_path


def test_video_source_becomes_movie_clip_background(tmp_path):
    import cv2
    video = str(tmp_path / "clip.mp4")
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"mp4v"), 30, (640, 480))
    for i in range(6):
        writer.write(np.full((480, 640, 3), 40 * i, np.uint8))
    writer.release()
    result = build(save(toy_capture(frames=6, source_path=video), tmp_path / "clip.npz"))
    bg = result.camera.data.background_images[0]
    assert bg.source == "MOVIE_CLIP" and bg.clip.frame_start == 1
    assert result.collection.name == "clip"


def test_missing_source_is_a_warning_not_an_error(tmp_path):
    result = build(save(toy_capture(frames=2, source_path="/nowhere/take7.mp4"), tmp_path / "t.npz"))
    assert result.rigs and not result.camera.data.background_images
    assert any("not found" in w for w in result.warnings)
    assert result.collection.name == "take7"


def _invalid_files(tmp_path, good):
    arrays = dict(np.load(good))
    cases = {}

    def variant(name, **change):
        a = dict(arrays)
        for k, v in change.items():
            if v is None:
                a.pop(k)
            else:
                a[k] = v
        path = tmp_path / f"{name}.npz"
        np.savez(path, **a)
        cases[name] = str(path)

    variant("missing_key", **{"track0/pose": None})
    nan_pose = arrays["track0/pose"].copy()
    nan_pose[1, 3, 0] = np.nan
    variant("nan_pose", **{"track0/pose": nan_pose})
    variant("bad_shape", **{"track0/transl": arrays["track0/transl"][:, :2]})
    variant("bad_side", **{"track0/side": np.array("middle")})
    variant("bad_version", version=np.array(99, np.int32))
    (tmp_path / "not_npz.npz").write_bytes(b"this is not a zip file")
    cases["not_npz"] = str(tmp_path / "not_npz.npz")
    cases["missing_file"] = str(tmp_path / "nope.npz")
    return cases


def test_invalid_capture_leaves_scene_unchanged(hands, tmp_path):
    path, _, _ = hands
    build(path)                                   # a scene with content already
    before = scene_fingerprint()
    for name, bad in _invalid_files(tmp_path, path).items():
        with pytest.raises(RuntimeError, match="Not imported"):
            bpy.ops.handcap.import_capture(filepath=bad)
        assert scene_fingerprint() == before, name
        with pytest.raises(CaptureError):
            load_capture(bad)
    # one bad file among good ones: nothing is imported
    with pytest.raises(RuntimeError, match="Not imported"):
        bpy.ops.handcap.import_capture(directory=os.path.dirname(path), files=[
            {"name": os.path.basename(path)}, {"name": "nope.npz"}])
    assert scene_fingerprint() == before


def test_failed_build_is_rolled_back(hands, monkeypatch):
    path, _, _ = hands
    reset_scene()
    before = scene_fingerprint()
    real = import_capture.build_track

    def second_track_fails(track, index, *args):
        if index == 1:
            raise RuntimeError("simulated failure")
        return real(track, index, *args)

    monkeypatch.setattr(import_capture, "build_track", second_track_fails)
    with pytest.raises(RuntimeError, match="simulated"):
        import_capture.import_files([path], bpy.context)
    assert scene_fingerprint() == before


def test_import_operator_several_files_one_collection_each(hands, tmp_path):
    path, capture, _ = hands
    other = save(toy_capture(frames=3, sides=("left",)), tmp_path / "other_take.npz")
    reset_scene()
    assert bpy.ops.handcap.import_capture(directory=str(tmp_path), files=[
        {"name": "other_take.npz"}]) == {"FINISHED"}
    assert bpy.ops.handcap.import_capture(filepath=path) == {"FINISHED"}
    assert bpy.ops.handcap.import_capture(filepath=other) == {"FINISHED"}
    names = sorted(c.name for c in bpy.context.scene.collection.children)
    assert names == ["other_take", "other_take.001", "studio_take"]
    assert len([o for o in bpy.data.objects if o.type == "ARMATURE"]) == 4
    assert bpy.types.HANDCAP_OT_import_capture.bl_options >= {"UNDO", "REGISTER"}


def test_save_reload_matches_hand_layer(hands, tmp_path):
    path, _, refs = hands
    build(path)
    blend = export_scene.write_scene(str(tmp_path / "hands.blend"))
    assert sorted(os.listdir(tmp_path)) == ["hands.blend"]       # no temp or backup files
    bpy.ops.wm.open_mainfile(filepath=blend)
    rigs = [(bpy.data.objects[f"studio_take hand{t}{s} rig"], bpy.data.objects[f"studio_take hand{t}{s}"])
            for t, s in ((0, ".R"), (1, ".L"))]
    err = max_error(rigs, refs)
    print(f"max |Blender - HandLayer| after save + reload: {err * 1e3:.5f} mm")
    assert err < TOL_M


def test_many_hands_one_rig_each_named_after_person_and_side(tmp_path):
    """A photo of a group: six hands of three people (and one hand of no known person) -> one rig per
    hand, named after its person and side."""
    capture = toy_capture(frames=1, sides=("right", "left", "right", "left", "right", "left", "right"), fps=0.0)
    for track, person in zip(capture.tracks, (0, 0, 1, 1, 2, 2, -1)):
        track.person = person
    result = build(save(capture, tmp_path / "group.npz"))
    names = [arm.name for arm, _ in result.rigs]
    assert len(result.rigs) == 7 and len(set(names)) == 7
    assert names[0] == "group person0 hand0.R rig" and names[3] == "group person1 hand3.L rig"
    assert names[6] == "group hand6.R rig"
