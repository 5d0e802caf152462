"""Helpers shared by the Blender tests: toy and hand-model captures, a numpy LBS, scene probes.

The numpy LBS is tests/reference_lbs.py, written from capture_format's docstring,
independently of the add-on (which converts poses to Blender bone channels) and of core's layer.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from blender_addon.capture_format import Capture, HandTrack, save_capture  # noqa: E402
from tests.reference_lbs import skin  # noqa: E402

MANO_PARENTS = np.array([-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14], np.int32)
MANO_JOINTS = ["wrist", "index1", "index2", "index3", "middle1", "middle2", "middle3",
               "pinky1", "pinky2", "pinky3", "ring1", "ring2", "ring3", "thumb1", "thumb2", "thumb3"]
TIPS_PARENT = [15, 3, 6, 12, 9]          # thumb, index, middle, ring, pinky tips hang off these
OPENPOSE_FROM_MANO = [0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20]


def lbs(track: HandTrack, rows=None, with_correctives: bool = True) -> np.ndarray:
    """Posed vertices (M, V, 3) in camera space for the given frame rows (capture convention)."""
    rows = np.arange(track.num_frames) if rows is None else np.asarray(rows)
    correctives = track.pose_correctives if with_correctives else None
    return skin(track.rest_vertices, track.rest_joints, track.parents, track.skin_weights,
                track.pose[rows], track.transl[rows], correctives)[0]


def posed_joints(track: HandTrack, rows=None) -> np.ndarray:
    """Posed joint positions (M, J, 3) in camera space (the origins of G_j, plus transl)."""
    rows = np.arange(track.num_frames) if rows is None else np.asarray(rows)
    return skin(track.rest_vertices, track.rest_joints, track.parents, track.skin_weights,
                track.pose[rows], track.transl[rows])[1]


# --- a toy hand: 16 MANO joints, tubes along the bones, blended weights --------------------

def toy_rest(side: str = "right"):
    """(rest_vertices, faces, face_uvs, weights, rest_joints) for a small hand-shaped rig."""
    joints = np.zeros((16, 3))
    tips = []
    fingers = {"index": (0.025, 1), "middle": (0.005, 4), "ring": (-0.015, 10), "pinky": (-0.033, 7)}
    for name, (x, first) in fingers.items():
        base = np.array([x, 0.085 - 0.4 * abs(x), 0.0])
        d = np.array([0.15 * x / 0.035, 1.0, 0.0])
        d /= np.linalg.norm(d)
        lengths = [0.040, 0.025, 0.020] if name != "pinky" else [0.030, 0.020, 0.017]
        joints[first] = base
        joints[first + 1] = base + d * lengths[0]
        joints[first + 2] = joints[first + 1] + d * lengths[1]
        tips.append((first + 2, d * lengths[2]))
    d = np.array([1.0, 0.9, -0.3]) / np.linalg.norm([1.0, 0.9, -0.3])
    joints[13] = [0.025, 0.02, -0.005]
    joints[14] = joints[13] + d * 0.035
    joints[15] = joints[14] + d * 0.03
    tips.append((15, d * 0.025))
    ends = {j: joints[c] for j, c in enumerate(_first_child())}
    ends.update({j: joints[j] + off for j, off in tips})
    ends[0] = joints[4]
    verts, faces, weights = [], [], []
    ring = 8
    stations = 5
    for j in range(16):
        a, b = joints[j], ends[j]
        axis = (b - a) / np.linalg.norm(b - a)
        u = np.cross(axis, [0, 0, 1.0])
        u /= np.linalg.norm(u)
        w = np.cross(axis, u)
        radius = 0.025 if j == 0 else 0.008
        start = len(verts)
        for s in range(stations):
            t = 0.04 + 0.92 * s / (stations - 1)      # no two tubes share a vertex position
            for k in range(ring):
                ang = 2 * np.pi * k / ring
                verts.append(a + t * (b - a) + radius * (np.cos(ang) * u + np.sin(ang) * w))
                wt = np.zeros(16)
                p = MANO_PARENTS[j]
                blend = min(1.0, 0.45 + t) if p >= 0 else 1.0
                wt[j] = blend
                if p >= 0:
                    wt[p] = 1 - blend
                weights.append(wt)
        for s in range(stations - 1):
            for k in range(ring):
                i0 = start + s * ring + k
                i1 = start + s * ring + (k + 1) % ring
                faces.append([i0, i1, i1 + ring])
                faces.append([i0, i1 + ring, i0 + ring])
    verts, faces, weights = np.array(verts), np.array(faces, np.int32), np.array(weights)
    rng = np.random.default_rng(7)
    spread = rng.choice(len(verts), 40, replace=False)     # some vertices with 6 influences
    for v in spread:
        extra = rng.choice(16, 6, replace=False)
        weights[v] = 0
        weights[v, extra] = rng.dirichlet(np.ones(6))
    uvs = rng.random((len(faces), 3, 2))
    if side == "left":
        verts, joints = verts * [-1, 1, 1], joints * [-1, 1, 1]
        faces = faces[:, ::-1].copy()
        uvs = uvs[:, ::-1].copy()
    return verts, faces, uvs, weights, joints


def _first_child():
    kids = [None] * 16
    for j, p in enumerate(MANO_PARENTS):
        if p >= 0 and kids[p] is None:
            kids[p] = j
    return [k if k is not None else j for j, k in enumerate(kids)]


def random_poses(n: int, seed: int = 0, scale: float = 0.35) -> np.ndarray:
    """(n, 16, 3) random axis-angle poses: finger curls about x plus noise, a free root."""
    rng = np.random.default_rng(seed)
    pose = rng.normal(scale=scale * 0.4, size=(n, 16, 3))
    pose[:, 1:, 0] += rng.uniform(0, 1.2, size=(n, 15))
    pose[:, 0] = rng.normal(scale=1.5, size=(n, 3))          # any root orientation
    return pose


def default_K(width: int = 640, height: int = 480) -> np.ndarray:
    return np.array([[600.0, 0, width / 2 - 3.5], [0, 600.0, height / 2 + 6.25], [0, 0, 1]], np.float32)


def track_from_arrays(side, verts, faces, uvs, weights, joints, pose, transl, K,
                      correctives=None, valid=None, frame_index=None) -> HandTrack:
    """A HandTrack whose per-frame fields are consistent with the numpy LBS above."""
    n = len(pose)
    track = HandTrack(
        side=side, betas=np.zeros(10, np.float32), rest_vertices=verts.astype(np.float32),
        faces=faces.astype(np.int32), skin_weights=weights.astype(np.float32),
        rest_joints=joints.astype(np.float32), parents=MANO_PARENTS.copy(),
        joint_names=np.array(MANO_JOINTS),
        frame_index=(np.arange(n) if frame_index is None else frame_index).astype(np.int32),
        pose=pose.astype(np.float32), transl=transl.astype(np.float32),
        joints_3d=np.zeros((n, 21, 3), np.float32), keypoints_2d=np.zeros((n, 21, 2), np.float32),
        confidence=np.ones(n, np.float32), valid=np.ones(n, bool) if valid is None else valid,
        face_uvs=None if uvs is None else uvs.astype(np.float32),
        pose_correctives=None if correctives is None else correctives.astype(np.float32))
    # keypoints: the 16 posed joints plus the vertex farthest along each finger, OpenPose order
    posed = lbs(track)
    tip_v = _tip_vertices(verts, weights, joints)
    kp16 = posed_joints(track)
    kp21 = np.concatenate([kp16, posed[:, tip_v]], axis=1)[:, OPENPOSE_FROM_MANO]
    track.joints_3d = kp21.astype(np.float32)
    p = kp21 @ np.asarray(K, np.float64).T
    track.keypoints_2d = (p[..., :2] / p[..., 2:]).astype(np.float32)
    return track


def _tip_vertices(verts, weights, joints):
    """For each finger (thumb..pinky), the vertex its last bone drives farthest out."""
    dominant = np.argmax(weights, axis=1)
    out = []
    for j3 in TIPS_PARENT:
        d = joints[j3] - joints[MANO_PARENTS[j3]]
        reach = np.where(dominant == j3, (verts - joints[j3]) @ d, -np.inf)
        out.append(int(np.argmax(reach)))
    return out


def toy_capture(frames: int = 6, sides=("right",), correctives: bool = False, seed: int = 0,
                source_path: str = "", fps: float = 30.0, invalid_rows=()) -> Capture:
    """A capture of toy hands with random known poses in front of the camera."""
    rng = np.random.default_rng(seed)
    K = default_K()
    tracks = []
    for t, side in enumerate(sides):
        verts, faces, uvs, weights, joints = toy_rest(side)
        pose = random_poses(frames, seed + t)
        transl = np.stack([np.linspace(-0.05, 0.05, frames) + 0.08 * (t - 0.5 * (len(sides) - 1)),
                           np.linspace(0.03, -0.02, frames), np.linspace(0.45, 0.55, frames)], 1)
        transl -= joints[4] * [1, 1, 0]                      # hand centred-ish in the image
        corr = rng.normal(scale=0.002, size=(135, len(verts), 3)) if correctives else None
        valid = np.ones(frames, bool)
        valid[list(invalid_rows)] = False
        tracks.append(track_from_arrays(side, verts, faces, uvs, weights, joints, pose, transl, K,
                                        corr, valid))
    return Capture(hand_model="toy", source_path=source_path, image_size=np.array([640, 480]),
                   K=K, fps=fps, tracks=tracks)


def model_capture(sides=("right", "left"), frames: int = 6, correctives: bool = False,
                  seed: int = 0, source_path: str = "", fps: float = 30.0, fingers_up: bool = False,
                  distance: float = 0.45):
    """A capture made by core's torch hand layer with known prior-sampled poses.

    Returns (capture, layer_vertices): one (N, V, 3) float64 array per track, camera space,
    straight from ``HandLayer`` (the ground truth Blender must reproduce). With
    ``correctives`` the model gets random pose correctives (MANO-style posedirs).
    """
    import dataclasses

    import torch
    from core.capture import track_from_layer
    from core.hand_model import HandLayer, PosePrior, load_hand_model

    K = default_K()
    tracks, refs = [], []
    rng = np.random.default_rng(seed)
    for t, side in enumerate(sides):
        model = load_hand_model("open", side=side)
        if correctives:
            posedirs = rng.normal(scale=0.003, size=(135, model.num_vertices, 3)).astype(np.float32)
            model = dataclasses.replace(model, posedirs=posedirs)
        layer = HandLayer(model)
        generator = torch.Generator().manual_seed(seed * 10 + t)
        pose = PosePrior(model).sample(frames, generator, global_orient=True).numpy()
        if fingers_up:
            pose[:, 0] = [np.pi, 0.0, 0.0]
        betas = rng.normal(size=10).astype(np.float32)
        x = 0.06 * (t - 0.5 * (len(sides) - 1))
        transl = np.stack([np.full(frames, x), np.linspace(0.05, 0.07, frames),
                           np.linspace(distance, distance + 0.05, frames)], 1).astype(np.float32)
        track = track_from_layer(layer, betas, pose, transl, K)
        with torch.no_grad():
            out = layer(torch.as_tensor(betas)[None].expand(frames, -1), torch.as_tensor(pose),
                        torch.as_tensor(transl))
        tracks.append(track)
        refs.append(out.vertices.double().numpy())
    capture = Capture(hand_model="open_hand", source_path=source_path,
                      image_size=np.array([640, 480]), K=K, fps=fps, tracks=tracks)
    return capture, refs


def save(capture: Capture, path) -> str:
    save_capture(capture, str(path))
    return str(path)


# --- Blender probes ---------------------------------------------------------------------

def bpy_or_skip():
    """The bpy module, or skip the test when it is truly not installed."""
    return pytest.importorskip("bpy")


def reset_scene():
    import bpy
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return bpy.context.scene


def has_slotted_actions() -> bool:
    """Blender 4.4 on: actions hold layers, strips and slots (channelbags of F-curves per slot)."""
    import bpy
    return hasattr(bpy.types, "ActionSlot")


def slot_fcurves(owner) -> list:
    """The F-curves that ``owner`` (an AnimData or an NLA strip) plays from its action: the
    channelbag of its slot (Blender 4.4 on; one layer, one strip), or the action's own F-curves
    (Blender 4.2/4.3, where an action animates one datablock)."""
    action = owner.action
    if not has_slotted_actions():
        return list(action.fcurves)
    bag = action.layers[0].strips[0].channelbag(owner.action_slot)
    return list(bag.fcurves) if bag is not None else []


def world_vertices(obj, scene, frame: int) -> np.ndarray:
    """Evaluated (deformed) vertices of a mesh object at ``frame``, world space, (V, 3)."""
    import bpy
    scene.frame_set(frame)
    depsgraph = bpy.context.evaluated_depsgraph_get()
    ev = obj.evaluated_get(depsgraph)
    mesh = ev.to_mesh()
    co = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    mw = np.array(ev.matrix_world, np.float64)
    ev.to_mesh_clear()
    co = co.reshape(-1, 3).astype(np.float64)
    return co @ mw[:3, :3].T + mw[:3, 3]


def cv_to_world(points: np.ndarray) -> np.ndarray:
    """OpenCV camera space -> the Blender world the add-on builds in (diag(1, -1, -1))."""
    return np.asarray(points, np.float64) * np.array([1.0, -1.0, -1.0])


def test_toy_lbs_is_rigid_at_zero_pose():
    """The reference LBS moves the rest mesh by transl only when every rotation is zero."""
    cap = toy_capture(frames=2)
    track = cap.tracks[0]
    track.pose[:] = 0
    np.testing.assert_allclose(lbs(track)[1], track.rest_vertices + track.transl[1], atol=1e-6)


def rest_world(obj) -> np.ndarray:
    """A mesh object's undeformed vertices (V, 3) in world space."""
    co = np.empty(len(obj.data.vertices) * 3, np.float32)
    obj.data.vertices.foreach_get("co", co)
    mw = np.array(obj.matrix_world, np.float64)
    return co.reshape(-1, 3).astype(np.float64) @ mw[:3, :3].T + mw[:3, 3]


def match_rows(found: np.ndarray, want: np.ndarray, tol: float = 1e-5) -> np.ndarray:
    """For each row of ``found`` (M, 3), the index of the identical row of ``want`` (V, 3).

    Exporters split vertices at UV seams, so a re-imported mesh is matched to the original by
    rest position (the hand meshes have no two vertices closer than a fraction of a mm).
    """
    d2 = ((found[:, None, :] - want[None, :, :]) ** 2).sum(-1)
    idx = d2.argmin(1)
    assert np.sqrt(d2[np.arange(len(found)), idx]).max() < tol
    return idx


def scene_fingerprint() -> dict:
    """Everything an import could change: datablock names per type and the scene's settings."""
    import bpy
    kinds = ("objects", "meshes", "armatures", "cameras", "actions", "materials", "images",
             "movieclips", "collections", "shape_keys")
    out = {k: sorted(i.name for i in getattr(bpy.data, k)) for k in kinds}
    scene = bpy.context.scene
    out["scene"] = (scene.frame_start, scene.frame_end, scene.frame_current, scene.render.fps,
                    scene.render.fps_base, scene.render.resolution_x, scene.render.resolution_y,
                    scene.camera.name if scene.camera else None,
                    [c.name for c in scene.collection.children])
    return out


FAKE_ENGINE = r'''
"""A stand-in for `python -m core estimate ... --progress json` (see test_blender_support)."""
import json, os, shutil, sys, time

args = sys.argv[1:]
out = args[args.index("-o") + 1]
source = args[args.index("--views") + 1] if "--views" in args else args[1]    # the first view names the output
mode = os.environ.get("FAKE_ENGINE_MODE", "ok")
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "argv.json"), "w") as f:
    json.dump(args, f)

def say(**event):
    print(json.dumps(event), flush=True)

def partial():
    """A temporary output file, as the real engine has one open while it writes."""
    with open(os.path.join(out, ".photo.npz.x1y2z3.handcap-tmp.npz"), "wb") as f:
        f.write(b"PK half a capture")

print("loading weights (a line that is not JSON)", flush=True)
say(stage="detect", done=0, total=3, message="")
target = os.path.join(out, os.path.splitext(os.path.basename(source))[0] + ".npz")
if mode == "crash":
    print("some warning on stderr", file=sys.stderr)
    raise RuntimeError("model exploded")
if mode == "error":
    say(stage="error", done=0, total=0, message=f"{source}: not a readable image (corrupt or not an image)")
    sys.exit(1)
if mode == "nohand":                     # read fine, no hand: a capture without hands, exit code 3
    shutil.copyfile(os.environ["FAKE_ENGINE_EMPTY"], target)
    say(stage="done", done=1, total=1, message="", outputs=[target], failed=0, no_hand=[source])
    sys.exit(3)
if mode in ("slow", "hang", "killed"):
    partial()
    say(stage="track", done=1, total=3, message=mode)
    if mode == "killed":
        os.kill(os.getpid(), 9)
    time.sleep(60)
for i in range(1, 4):
    say(stage="track", done=i, total=3, message=f"frame {i}")
shutil.copyfile(os.environ["FAKE_ENGINE_CAPTURE"], target)
say(stage="done", done=3, total=3, message="", output=target)
'''


def make_fake_engine(folder) -> str:
    """A folder holding a fake ``core`` package; put it first on PYTHONPATH to use it."""
    pkg = os.path.join(str(folder), "fake_engine", "core")
    os.makedirs(pkg, exist_ok=True)
    open(os.path.join(pkg, "__init__.py"), "w").close()
    with open(os.path.join(pkg, "__main__.py"), "w") as f:
        f.write(FAKE_ENGINE)
    return os.path.dirname(pkg)


def write_png(path, width: int = 640, height: int = 480) -> str:
    """A synthetic background photo: a soft two-colour gradient (no real images)."""
    import cv2
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    t = (0.6 * x / width + 0.4 * y / height)[..., None]
    top, bottom = np.array([70, 60, 40.0]), np.array([200, 185, 160.0])   # BGR
    img = (top * (1 - t) + bottom * t).astype(np.uint8)
    cv2.imwrite(str(path), img)
    return str(path)
