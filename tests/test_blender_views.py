"""A multi-view capture in Blender: every view's camera sees the hand where numpy's pinhole puts it.

The capture comes from core's hand layer (``track_from_layer``) with exact cameras turned around
the hand. For every view the hand rig's joints, as Blender poses them, are projected through that
view's camera object (``world_to_camera_view`` at the view's render size) and compared with
``K_c (R_c x + t_c)`` computed in numpy from the reference LBS (tests/reference_lbs.py), which
knows nothing of the add-on's camera placement.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from blender_addon import camera_math, naming, rig_math
from blender_addon.capture_format import CaptureViews
from tests.test_blender_math import random_rotations
from tests.test_blender_support import bpy_or_skip, model_capture, posed_joints, reset_scene, save, write_png

TOL_PX = 0.05          # the poses match to 1e-4 m; projections to far under a pixel


def rotation_y(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rotation_x(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def cameras_around(centre: np.ndarray, turns) -> tuple:
    """(R (C, 3, 3), t (C, 3)) of cameras that look at ``centre`` (first camera's OpenCV space,
    metres) from the first camera's distance, turned about it by each rotation of ``turns``
    (the first must be the identity): camera c's axes in the first camera's space are Q = turn,
    its centre is centre - Q @ centre, so x_c = Q^T (x - centre_c)."""
    R, t = [], []
    for Q in turns:
        position = centre - Q @ centre
        R.append(Q.T)
        t.append(-Q.T @ position)
    return np.array(R), np.array(t)


# view 1: portrait phone turned 55 degrees to the left; view 2: a wide camera with non-square pixels,
# turned 70 degrees the other way and 20 degrees down
VIEW_SIZES = [(640, 480), (480, 640), (800, 600)]
VIEW_K = [None,
          np.array([[520.0, 0, 250.5], [0, 520.0, 310.0], [0, 0, 1]]),
          np.array([[700.0, 0, 395.0], [0, 690.0, 305.5], [0, 0, 1]])]
TURNS = [np.eye(3), rotation_y(np.radians(55)), rotation_y(np.radians(-70)) @ rotation_x(np.radians(-20))]


def views_capture(folder, names=("left_phone.png", "right_phone.png", "top_cam.png"), frames: int = 2,
                  backgrounds=None, frame_offset=None):
    """A right hand (core's layer) seen by three exact cameras; each view's photo written in ``folder``
    (``backgrounds(c, K, R, t, size, path, joints)`` may draw it instead of a plain gradient; joints: the
    first frame's 21 landmark points (21, 3), first camera's space, metres)."""
    capture, _ = model_capture(("right",), frames, seed=3, distance=0.4)
    centre = capture.tracks[0].joints_3d[0].mean(0).astype(np.float64)
    R, t = cameras_around(centre, TURNS)
    K = np.array([capture.K] + VIEW_K[1:], np.float64)
    paths = []
    for c, (name, size) in enumerate(zip(names, VIEW_SIZES)):
        path = os.path.join(str(folder), name)
        if backgrounds is None:
            write_png(path, *size)
        else:
            backgrounds(c, K[c], R[c], t[c], size, path, capture.tracks[0].joints_3d[0].astype(np.float64))
        paths.append(path)
    capture.source_path = paths[0]
    capture.views = CaptureViews(
        K=K.astype(np.float32), R=R.astype(np.float32), t=t.astype(np.float32),
        image_size=np.array(VIEW_SIZES, np.int32), source_path=np.array(paths),
        frame_offset=np.zeros(3, np.int32) if frame_offset is None else np.asarray(frame_offset, np.int32))
    return capture


def expected_pixels(capture, c: int, rows=None) -> np.ndarray:
    """(N, 16, 2) pixels of the rig joints in view c: the reference LBS, then K_c (R_c x + t_c)."""
    x = posed_joints(capture.tracks[0], rows)
    v = capture.views
    return camera_math.project(v.K[c], x @ np.asarray(v.R[c], np.float64).T + v.t[c])


# --- numpy: the pose of a view's camera ----------------------------------------------------

def test_view_pose_sees_points_where_R_and_t_put_them():
    """A camera at view_from_first's pose, looking down its -z with +y up, has its centre at the
    view's centre -R^T t, looks along R^T z and has R^T (-y) as up, all in the first camera's OpenCV
    space seen in Blender's world (diag(1, -1, -1)); and a point lands at F (R x + t) in its frame."""
    rng = np.random.default_rng(4)
    F = rig_math.CV_TO_BLENDER
    for R, t in zip(random_rotations(20, rng), rng.normal(size=(20, 3))):
        M = camera_math.view_from_first(R, t)
        np.testing.assert_allclose(M[3], [0, 0, 0, 1], atol=1e-12)
        np.testing.assert_allclose(M[:3, :3] @ M[:3, :3].T, np.eye(3), atol=1e-12)
        assert np.linalg.det(M[:3, :3]) > 0
        np.testing.assert_allclose(M[:3, 3], F @ (-R.T @ t), atol=1e-12)            # camera centre
        np.testing.assert_allclose(M[:3, :3] @ [0, 0, -1], F @ R.T @ [0, 0, 1], atol=1e-12)   # looking along
        np.testing.assert_allclose(M[:3, :3] @ [0, 1, 0], F @ R.T @ [0, -1, 0], atol=1e-12)   # up: image -y
        x = rng.normal(size=(5, 3)) + [0, 0, 3]
        local = (np.linalg.inv(M) @ np.c_[x @ F.T, np.ones(5)].T).T[:, :3]
        np.testing.assert_allclose(local, (x @ R.T + t) @ F.T, atol=1e-12)
    np.testing.assert_allclose(camera_math.view_from_first(np.eye(3), np.zeros(3)), np.eye(4), atol=1e-15)


def test_view_camera_names_follow_the_sources():
    assert naming.view_camera_names(["/a/left.mp4", "/b/right.mp4"]) == ["left camera", "right camera"]
    assert naming.view_camera_names(["d/view0/000001.jpg", "d/view1/000001.jpg"]) == \
        ["view0/000001 camera", "view1/000001 camera"]
    assert naming.view_camera_names(["a/x.jpg", "a/x.png", ""]) == ["x view0 camera", "x view1 camera",
                                                                     "view2 camera"]


# --- Blender --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bpy_addon():
    bpy = bpy_or_skip()
    import blender_addon
    blender_addon.register()
    yield bpy
    blender_addon.unregister()


def pixels_through(bpy, camera, points_world: np.ndarray) -> np.ndarray:
    """Pixels (M, 2) of world points seen by ``camera`` at the scene's render size (pixel centres at
    integers, y down)."""
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector
    scene = bpy.context.scene
    w, h = scene.render.resolution_x, scene.render.resolution_y
    ndc = np.array([tuple(world_to_camera_view(scene, camera, Vector(p))) for p in points_world])
    assert np.all(ndc[:, 2] > 0)                                   # in front of the camera
    return np.stack([ndc[:, 0] * w - 0.5, (1.0 - ndc[:, 1]) * h - 0.5], 1)


def rig_joints_world(bpy, armature) -> np.ndarray:
    """The posed bone heads (16, 3) in world space: where Blender has the hand's joints."""
    M = np.array(armature.matrix_world, np.float64)
    heads = np.array([tuple(pb.head) for pb in armature.pose.bones], np.float64)
    return heads @ M[:3, :3].T + M[:3, 3]


@pytest.mark.parametrize("cluttered", [False, True], ids=["empty scene", "cube at the origin"])
def test_every_view_sees_the_hand_on_its_keypoints(bpy_addon, tmp_path, cluttered):
    bpy = bpy_addon
    from blender_addon import build_camera, import_capture
    capture = views_capture(tmp_path)
    path = save(capture, tmp_path / "left_phone.npz")
    reset_scene()
    if cluttered:                       # the import then moves the capture down (clear_view): all cameras with it
        bpy.ops.mesh.primitive_cube_add(size=2.0)
    result = import_capture.import_files([path], bpy.context)[0]
    scene = bpy.context.scene
    assert [c.name for c in result.cameras] == ["left_phone camera", "right_phone camera", "top_cam camera"]
    assert result.camera is result.cameras[0] and scene.camera is result.cameras[0]
    moved = np.array(result.cameras[0].matrix_world)[:3, 3]
    assert (abs(moved[2]) > 0.5) == cluttered and np.allclose(moved[:2], 0)
    armature = result.rigs[0][0]
    worst = 0.0
    for frame in (1, 2):
        scene.frame_set(frame)
        joints = rig_joints_world(bpy, armature)
        for c, camera in enumerate(result.cameras):
            assert build_camera.match_render_to_camera(scene, camera)
            assert (scene.render.resolution_x, scene.render.resolution_y) == VIEW_SIZES[c]
            want = expected_pixels(capture, c, [frame - 1])[0]
            assert np.all((want > 0) & (want < VIEW_SIZES[c])), f"view {c}: the hand leaves the image"
            err = np.abs(pixels_through(bpy, camera, joints) - want).max()
            worst = max(worst, err)
    print(f"max |Blender camera projection - K(Rx+t)| over 3 views, 2 frames: {worst:.4f} px")
    assert worst < TOL_PX
    for c, camera in enumerate(result.cameras):             # each its own photo behind it
        backgrounds = camera.data.background_images
        assert camera.data.show_background_images and len(backgrounds) == 1
        assert backgrounds[0].source == "IMAGE"
        assert bpy.path.abspath(backgrounds[0].image.filepath) == str(capture.views.source_path[c])
        assert tuple(backgrounds[0].image.size) == VIEW_SIZES[c]


def test_one_view_capture_keeps_one_camera(bpy_addon, tmp_path):
    bpy = bpy_addon
    from blender_addon import import_capture
    capture = views_capture(tmp_path)
    capture.views = None
    reset_scene()
    result = import_capture.import_files([save(capture, tmp_path / "one.npz")], bpy.context)[0]
    assert result.cameras == [result.camera] and result.camera.name == "left_phone camera"
    assert len(bpy.data.cameras) == 1


def write_clip(path: str, size, frames: int = 12) -> str:
    """A small MJPG .avi whose frame i is a flat grey of 10 * i (to tell frames apart)."""
    import cv2
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 30.0, tuple(size))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), 10 * i, np.uint8))
    writer.release()
    return path


def test_video_views_start_at_their_frame_offset(bpy_addon, tmp_path):
    """View c's frame i + offset[c] shows the first view's frame i, which Blender plays at scene
    frame i + 1: so view c's clip starts (its frame 0 plays) at scene frame 1 - offset[c]."""
    bpy = bpy_addon
    from blender_addon import import_capture
    capture = views_capture(tmp_path, frame_offset=[0, 7, -3])
    clips = [write_clip(str(tmp_path / f"cam{c}.avi"), size) for c, size in enumerate(VIEW_SIZES)]
    capture.source_path = clips[0]
    capture.views.source_path = np.array(clips)
    capture.fps = 30.0
    reset_scene()
    result = import_capture.import_files([save(capture, tmp_path / "cams.npz")], bpy.context)[0]
    assert not result.warnings, result.warnings
    assert [c.name for c in result.cameras] == ["cam0 camera", "cam1 camera", "cam2 camera"]
    for camera, clip_path, start in zip(result.cameras, clips, (1, -6, 4)):
        background = camera.data.background_images[0]
        assert background.source == "MOVIE_CLIP"
        assert bpy.path.abspath(background.clip.filepath) == clip_path
        assert background.clip.frame_start == start
        assert tuple(background.clip.size) == tuple(VIEW_SIZES[int(camera["handcap_view"])])


# --- a render through every camera, over its own background ----------------------------------

def draw_keypoints_background(c, K, R, t, size, path, joints) -> None:
    """A ``backgrounds`` callback for ``views_capture``: on each view's gradient, the hand's 21 landmark
    points projected in numpy (K (R x + t)), which the hand's render must cover."""
    import cv2

    from tests.test_blender_render import BONES
    write_png(path, *size)
    image = cv2.imread(path)
    pts = camera_math.project(K, joints @ R.T + t).round().astype(int)
    for a, b in BONES:
        cv2.line(image, tuple(pts[a]), tuple(pts[b]), (60, 200, 60), 2, cv2.LINE_AA)
    for p in pts:
        cv2.circle(image, tuple(p), 4, (30, 30, 220), -1, cv2.LINE_AA)
    cv2.putText(image, f"view {c}", (12, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 255), 2, cv2.LINE_AA)
    cv2.imwrite(path, image)


def test_render_from_every_camera_covers_its_keypoints(bpy_addon, tmp_path):
    """Cycles (CPU, few samples, half size) through each camera, composited over that camera's own
    background image: the hand covers the keypoints projected in numpy. (docs/blender_views.png, from
    an engine capture of rendered photos, is made by training/blender_views_figure.py.)"""
    import cv2
    bpy = bpy_addon
    from blender_addon import build_camera, import_capture
    from tests.test_blender_render import light_scene, render
    capture = views_capture(tmp_path, frames=1, backgrounds=draw_keypoints_background)
    reset_scene()
    result = import_capture.import_files([save(capture, tmp_path / "views.npz")], bpy.context)[0]
    scene = bpy.context.scene
    light_scene(scene)
    scale = 0.5
    for c, camera in enumerate(result.cameras):
        build_camera.match_render_to_camera(scene, camera)
        rgba = render(str(tmp_path / f"render{c}.png"), int(scale * 100), 4)
        kp = camera_math.project(capture.views.K[c], capture.tracks[0].joints_3d[0].astype(np.float64)
                                 @ np.asarray(capture.views.R[c], np.float64).T + capture.views.t[c])
        pix = ((kp + 0.5) * scale - 0.5).round().astype(int)
        mask = (rgba[..., 3] > 0.5).astype(np.uint8)
        near = cv2.dilate(mask, np.ones((5, 5), np.uint8))
        on_hand = near[pix[:, 1], pix[:, 0]].astype(bool)
        assert on_hand.mean() >= 0.9, (c, np.flatnonzero(~on_hand))      # fingertip points sit inside the pads
        background = bpy.path.abspath(camera.data.background_images[0].image.filepath)
        h, w = rgba.shape[:2]
        bg = cv2.resize(cv2.imread(background), (w, h)).astype(np.float32) / 255.0
        alpha = rgba[..., 3:4] * 0.75                                  # the drawn keypoints show through a little
        panel = ((rgba[..., :3] * alpha + bg * (1 - alpha)) * 255).astype(np.uint8)
        cv2.imwrite(str(tmp_path / f"view{c}.png"), panel)


# --- the panel's several views: input checks and the engine command (no engine) ------------------

def write_cameras(path, entries) -> str:
    import json
    with open(path, "w") as f:
        json.dump(entries, f)
    return str(path)


CAMERA_ENTRY = {"K": [[500, 0, 320], [0, 500, 240], [0, 0, 1]], "R": [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "t": [0, 0, 0]}


@pytest.fixture
def two_views(tmp_path):
    """Two photos and a cameras file for them."""
    views = [write_png(tmp_path / "left.png", 64, 48), write_png(tmp_path / "right.png", 64, 48)]
    return views, write_cameras(tmp_path / "cams.json", [CAMERA_ENTRY, dict(CAMERA_ENTRY, t=[0.3, 0, 0])])


def test_views_check_accepts_good_input_and_names_each_problem(tmp_path, two_views):
    from blender_addon.views_input import ViewsError, check_views
    views, cams = two_views
    check_views(views, cams)                                                 # fine: no error
    check_views(views, write_cameras(tmp_path / "wrapped.json", {"cameras": [CAMERA_ENTRY] * 2}))
    bad = [
        ((views[:1], cams), "at least two views"),
        (([views[0], ""], cams), "view 2 has no file"),
        (([views[0], str(tmp_path / "gone.png")], cams), r"view 2: .*gone.png: no such file"),
        (([views[0], views[0]], cams), "views 1 and 2 are the same file"),
        ((views, ""), "choose the cameras file"),
        ((views, str(tmp_path / "none.json")), "none.json: no such file"),
        ((views, write_cameras(tmp_path / "three.json", [CAMERA_ENTRY] * 3)), "3 camera.* for 2 views"),
        ((views, write_cameras(tmp_path / "obj.json", {"K": 1})), "must hold a JSON list"),
        ((views, write_cameras(tmp_path / "noR.json", [CAMERA_ENTRY, {"K": CAMERA_ENTRY["K"], "t": [0, 0, 0]}])),
         "entry 1 has no 'R'"),
        ((views, write_cameras(tmp_path / "t2.json", [CAMERA_ENTRY, dict(CAMERA_ENTRY, t=[0, 0])])),
         "entry 1: 't' must be 3 numbers"),
        ((views, write_cameras(tmp_path / "Kflat.json", [CAMERA_ENTRY, dict(CAMERA_ENTRY, K=list(range(9)))])),
         "'K' must be 3x3 numbers"),
    ]
    (tmp_path / "broken.json").write_text('[{"K": ')
    bad.append(((views, str(tmp_path / "broken.json")), "not readable JSON"))
    for (paths, cameras), message in bad:
        with pytest.raises(ViewsError, match=message):
            check_views(paths, cameras)


def test_views_command_line():
    from blender_addon import engine
    options = engine.EstimateOptions(hand="right", device="cpu", boxes=((1, 2, 3, 4),))
    command = engine.estimate_views_command("/env/python", ["/v/a.mp4", "/v/b.mp4", "/v/c.mp4"], "/v/cams.json",
                                            "/out", options)
    assert command == ["/env/python", "-m", "core", "estimate", "--views", "/v/a.mp4", "/v/b.mp4", "/v/c.mp4",
                       "--cameras", "/v/cams.json", "-o", "/out", "--progress", "json",
                       "--hand", "right", "--device", "cpu"]              # no --box: regions are for one image


@pytest.fixture
def fake_views_engine(tmp_path, monkeypatch, two_views):
    """The fake engine (tests/test_blender_support) handing back a three-view capture."""
    import sys

    from blender_addon import engine
    from tests.test_blender_support import make_fake_engine
    monkeypatch.setenv("PYTHONPATH", make_fake_engine(tmp_path))
    monkeypatch.setenv("FAKE_ENGINE_CAPTURE", save(views_capture(tmp_path, frames=1), tmp_path / "made.npz"))
    monkeypatch.setenv("FAKE_ENGINE_MODE", "ok")
    monkeypatch.setenv(engine.ENV_PYTHON, sys.executable)
    return two_views


def panel_views(bpy, views, cameras, out) -> None:
    """Fill the panel's Multi-View as a user would: Add Views with two files, the cameras file."""
    from tests.test_blender_support import reset_scene
    reset_scene()
    settings = bpy.context.scene.handcap
    folder = os.path.dirname(views[0])
    assert bpy.ops.handcap.view_add(directory=folder, files=[{"name": os.path.basename(p)} for p in views]) \
        == {"FINISHED"}
    settings.cameras_path, settings.output_dir = cameras, str(out)


def test_estimate_operator_runs_the_engine_on_every_view(bpy_addon, tmp_path, fake_views_engine):
    import json
    bpy = bpy_addon
    views, cams = fake_views_engine
    out = tmp_path / "out"
    panel_views(bpy, views, cams, out)
    settings = bpy.context.scene.handcap
    assert settings.input_mode == "views" and [v.path for v in settings.views] == views
    settings.hand = "left"
    settings.use_regions = True                         # ignored with several views
    assert bpy.ops.handcap.estimate() == {"FINISHED"}
    argv = json.load(open(out / "argv.json"))
    assert argv == ["estimate", "--views", *views, "--cameras", cams, "-o", str(out), "--progress", "json",
                    "--hand", "left"]
    cameras = sorted(o.name for o in bpy.data.objects if o.type == "CAMERA")
    assert cameras == ["left_phone camera", "right_phone camera", "top_cam camera"]
    assert bpy.context.scene.camera.name == "left_phone camera"
    assert bpy.ops.handcap.look_through(camera="top_cam camera") == {"FINISHED"}
    scene = bpy.context.scene
    assert scene.camera.name == "top_cam camera" and (scene.render.resolution_x, scene.render.resolution_y) == \
        VIEW_SIZES[2]
    assert bpy.ops.handcap.view_remove(index=0) == {"FINISHED"} and [v.path for v in settings.views] == views[1:]


def test_estimate_operator_checks_the_views_before_the_engine(bpy_addon, tmp_path, fake_views_engine):
    bpy = bpy_addon
    views, cams = fake_views_engine
    out = tmp_path / "out"
    panel_views(bpy, views, write_cameras(tmp_path / "one.json", [CAMERA_ENTRY]), out)
    with pytest.raises(RuntimeError, match="1 camera.* for 2 views"):
        bpy.ops.handcap.estimate()
    bpy.context.scene.handcap.cameras_path = cams
    bpy.context.scene.handcap.views.remove(1)
    with pytest.raises(RuntimeError, match="at least two views"):
        bpy.ops.handcap.estimate()
    assert not os.path.exists(out / "argv.json")          # the engine never started
    assert not [o for o in bpy.data.objects]


def test_panel_in_several_views_shows_views_and_cameras_not_regions(bpy_addon, tmp_path):
    from types import SimpleNamespace

    from blender_addon.panel import HANDCAP_PT_cameras, HANDCAP_PT_estimate
    from tests.test_blender_engine import RecordingLayout
    from tests.test_blender_support import reset_scene
    bpy = bpy_addon
    reset_scene()
    settings = bpy.context.scene.handcap
    settings.input_mode = "views"
    for name in ("a.mp4", "b.mp4"):
        settings.views.add().path = name
    log, labels = [], []
    HANDCAP_PT_estimate.draw(SimpleNamespace(layout=RecordingLayout(log, labels)), bpy.context)
    assert labels[:4] == [("input_mode", "Input"), ("path", "View 1"), ("path", "View 2"), ("cameras_path", "Cameras")]
    assert ("operator", "handcap.view_add") in log and log.count(("operator", "handcap.view_remove")) == 2
    assert ("prop", "input_path") not in log and ("operator", "handcap.region_add") not in log
    assert not HANDCAP_PT_cameras.poll(bpy.context)                    # no capture cameras yet
    import_capture_views(bpy, tmp_path)
    assert HANDCAP_PT_cameras.poll(bpy.context)
    log = []
    HANDCAP_PT_cameras.draw(SimpleNamespace(layout=RecordingLayout(log)), bpy.context)
    assert log.count(("operator", "handcap.look_through")) == 3


def import_capture_views(bpy, folder):
    from blender_addon import import_capture
    return import_capture.import_files([save(views_capture(folder, frames=1), os.path.join(str(folder), "v.npz"))],
                                       bpy.context)[0]
