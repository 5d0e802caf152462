"""Retarget onto other rigs: Rigify (metarig and generated), Mixamo, Unreal/MetaHuman, VRM, custom.

The truth is computed here, apart from the add-on: source segment directions and curl axes from
the capture's poses (the tests' own forward kinematics, tests/reference_lbs.py's Rodrigues), and
target directions from Blender's evaluated pose after ``frame_set``. Both are compared in their
own hand's frame (wrist -> middle knuckle, palm side from how each rig was built), which removes
the difference between the rigs' rest poses. Set ``HANDCAP_WRITE_DOCS=1`` to also write the
picture in docs/.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from tests.retarget_rigs import FINGERS, build_family_rig, rigify_rigs
from tests.reference_lbs import rodrigues
from tests.test_blender_support import (MANO_PARENTS, REPO, bpy_or_skip, reset_scene, save, slot_fcurves,
                                        toy_capture)

bpy = bpy_or_skip()

from blender_addon import import_capture  # noqa: E402
from blender_addon.retarget import name_mapping, retarget_rig  # noqa: E402
from blender_addon.retarget.bone_transfer import TransferOptions  # noqa: E402

JOINTS = name_mapping.JOINTS
CV_TO_WORLD = np.diag([1.0, -1.0, -1.0])
FRAMES = 8
DOCS_PICTURE = os.path.join(REPO, "docs", "retarget_render.png")


# --- the source: a capture with known poses ----------------------------------------------

def rest_directions(rest_joints: np.ndarray) -> np.ndarray:
    """Each joint's bone direction at rest (16, 3): toward its child, tips along their parent."""
    kids = {p: j for j, p in reversed(list(enumerate(MANO_PARENTS))) if p >= 0}
    d = np.zeros((16, 3))
    for j in range(16):
        a = rest_joints[j]
        b = rest_joints[kids[j]] if j in kids else a + (a - rest_joints[MANO_PARENTS[j]])
        d[j] = (b - a) / np.linalg.norm(b - a)
    return d


def palm_of(wrist, index1, pinky1, side) -> np.ndarray:
    n = np.cross(index1 - wrist, pinky1 - wrist)
    return (-n if side == "left" else n) / np.linalg.norm(n)


def frame_of(wrist, middle1, normal) -> np.ndarray:
    y = (middle1 - wrist) / np.linalg.norm(middle1 - wrist)
    z = normal - (normal @ y) * y
    z /= np.linalg.norm(z)
    return np.stack([np.cross(y, z), y, z], 1)


def fist_poses(track, angle: float) -> np.ndarray:
    """(16, 3) poses curling every finger joint by ``angle`` toward the palm (the thumb too)."""
    J = track.rest_joints.astype(np.float64)
    n = palm_of(J[0], J[1], J[7], track.side)
    d = rest_directions(J)
    pose = np.zeros((16, 3))
    for j in range(1, 16):
        axis = np.cross(d[j], n)
        pose[j] = angle * (0.6 if j in (13,) else 1.0) * axis / np.linalg.norm(axis)
    return pose


def make_capture(sides=("right", "left"), frames: int = FRAMES, seed: int = 3):
    """A toy capture whose frames are: rest, a fist, a spread hand, then random poses (all with
    a turned wrist)."""
    capture = toy_capture(frames=frames, sides=sides, seed=seed)
    for track in capture.tracks:
        J = track.rest_joints.astype(np.float64)
        n = palm_of(J[0], J[1], J[7], track.side)
        track.pose[0, 1:] = 0
        track.pose[1, 1:] = fist_poses(track, np.radians(75))[1:]
        spread = np.zeros((16, 3))
        for first, sign in ((1, 1), (4, 0.3), (10, -0.5), (7, -1)):
            spread[first] = np.radians(14) * sign * n * (1 if track.side == "right" else -1)
        spread[13] = np.radians(-20) * np.cross(rest_directions(J)[13], n)
        track.pose[2, 1:] = spread[1:]
        # joints_3d etc. are not used by the retarget; poses are the truth here
    return capture


def source_truth(track, hand_frames: bool = False) -> tuple:
    """Per frame, in the source hand's frame: directions (N, 16, 3) and curl axes (N, 16, 3)
    (and with ``hand_frames`` the hand frames (N, 3, 3) in camera space)."""
    J = track.rest_joints.astype(np.float64)
    R = rodrigues(track.pose.astype(np.float64))                  # (N, 16, 3, 3)
    G = np.zeros_like(R)
    pos = np.zeros(R.shape[:2] + (3,))
    for j, p in enumerate(MANO_PARENTS):
        G[:, j] = R[:, j] if p < 0 else G[:, p] @ R[:, j]
        pos[:, j] = 0 if p < 0 else pos[:, p] + np.einsum("nab,b->na", G[:, p], J[j] - J[p])
    n0 = palm_of(J[0], J[1], J[7], track.side)
    d0 = rest_directions(J)
    c0 = np.cross(d0, n0)
    c0 /= np.linalg.norm(c0, axis=1, keepdims=True)
    dirs = np.einsum("njab,jb->nja", G, d0)
    curls = np.einsum("njab,jb->nja", G, c0)
    out_d, out_c, frames = [], [], []
    for f in range(len(R)):
        H = frame_of(pos[f, 0], pos[f, 4], G[f, 0] @ n0)           # camera space; the hand's own frame
        out_d.append(dirs[f] @ H)
        out_c.append(curls[f] @ H)
        frames.append(H)
    if hand_frames:
        return np.array(out_d), np.array(out_c), np.array(frames)
    return np.array(out_d), np.array(out_c)


# --- the target, measured in Blender -----------------------------------------------------

def target_measure(rig, side: str, frames, hand_frames: list = None) -> tuple:
    """Per frame, in the target hand's frame: directions and curl axes (N, 16, 3) of the mapped
    bones (NaN where a joint has no bone), and the fingertips' height above the palm (N, 5).
    The hand frames (world) and wrist heads are appended to ``hand_frames`` when given."""
    obj = rig.obj
    M = np.array(obj.matrix_world)
    Rw = M[:3, :3] / np.linalg.norm(M[:3, 0])
    bones = {slot: rig.bones.get((side, slot)) for slot in JOINTS + name_mapping.METACARPALS}
    rest = {s: np.array(obj.data.bones[n].matrix_local)[:3, :3] for s, n in bones.items() if n}
    head0 = {s: M[:3, :3] @ np.array(obj.data.bones[n].head_local) + M[:3, 3] for s, n in bones.items() if n}
    tail0 = {s: M[:3, :3] @ np.array(obj.data.bones[n].tail_local) + M[:3, 3] for s, n in bones.items() if n}
    n0 = rig.palm_normal[side]
    H0 = frame_of(head0["wrist"], head0["middle1"], n0)
    hand_in_bone = (Rw @ rest["wrist"]).T @ H0
    curl_in_bone = {}
    for s in rest:
        d = M[:3, :3] @ np.array(end_of(obj.data.bones, bones, s, rest=True)) + M[:3, 3] - head0[s]
        c = np.cross(d / np.linalg.norm(d), n0)
        curl_in_bone[s] = (Rw @ rest[s]).T @ (c / np.linalg.norm(c))
    dirs = np.full((len(frames), 16, 3), np.nan)
    curls = np.full((len(frames), 16, 3), np.nan)
    tips = np.full((len(frames), 5), np.nan)
    scene = bpy.context.scene
    for i, f in enumerate(frames):
        scene.frame_set(int(f))
        pb = obj.pose.bones
        H = Rw @ np.array(pb[bones["wrist"]].matrix)[:3, :3] @ hand_in_bone
        wrist = M[:3, :3] @ np.array(pb[bones["wrist"]].head) + M[:3, 3]
        if hand_frames is not None:
            hand_frames.append((H, wrist))
        for j, slot in enumerate(JOINTS):
            if not bones[slot] or j == 0:
                continue
            b = pb[bones[slot]]
            head = M[:3, :3] @ np.array(b.head) + M[:3, 3]
            tail = M[:3, :3] @ np.array(end_of(pb, bones, slot)) + M[:3, 3]
            d = (tail - head) / np.linalg.norm(tail - head)
            dirs[i, j] = d @ H
            curls[i, j] = (Rw @ np.array(b.matrix)[:3, :3] @ curl_in_bone[slot]) @ H
            if slot.endswith("3"):
                tips[i, FINGERS.index(slot[:-1])] = (tail - wrist) @ H[:, 2]
    return dirs, curls, tips


def end_of(bones, names: dict, slot: str, rest: bool = False):
    """Where a finger segment ends (pose or rest bones): the next bone of its finger, else an
    end bone below it, else the bone's own tail."""
    head = "head_local" if rest else "head"
    tail = "tail_local" if rest else "tail"
    b = bones[names[slot]]
    if slot != "wrist" and not slot.endswith("3") and names.get(slot[:-1] + str(int(slot[-1]) + 1)):
        return getattr(bones[names[slot[:-1] + str(int(slot[-1]) + 1)]], head)
    leaves = [c for c in b.children if c.name.endswith(("4", "_end")) or "leaf" in c.name]
    return getattr(leaves[0], head) if leaves else getattr(b, tail)


def angles_deg(a, b) -> np.ndarray:
    cos = np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def twist_deg(d, c_target, c_source) -> np.ndarray:
    """Angle between two curl axes about the bone direction d (both made perpendicular to d)."""
    pt = c_target - np.sum(c_target * d, -1, keepdims=True) * d
    ps = c_source - np.sum(c_source * d, -1, keepdims=True) * d
    return angles_deg(pt, ps)


# --- fixtures -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """One scene holding the capture rigs (both hands) and every target rig."""
    folder = tmp_path_factory.mktemp("retarget")
    capture = make_capture()
    path = save(capture, folder / "take.npz")
    reset_scene()
    result = import_capture.import_files([path], bpy.context)[0]
    rigs = {family: build_family_rig(family, seed=k) for k, family in enumerate(("mixamo", "unreal", "vrm", "custom"))}
    rigs["unreal x-forward"] = build_family_rig("unreal", seed=7, name="unreal x-forward rig", x_forward=True)
    rigs["rigify metarig"], rigs["rigify generated"] = rigify_rigs()
    sources = {rig_data_side(a): a for a, _ in result.rigs}
    return dict(capture=capture, sources=sources, rigs=rigs, folder=folder, path=path)


def rig_data_side(armature) -> str:
    return "right" if "hand.R" in armature.data.bones else "left"


@pytest.mark.parametrize("family", ["rigify metarig", "rigify generated", "mixamo", "unreal", "unreal x-forward",
                                    "vrm", "custom"])
def test_fingers_follow_the_source(scene, family):
    """Every frame, every mapped finger bone: direction within 3 degrees of the source's, curl
    axis within 5 degrees (no twist), in each hand's own frame; a fist gives a fist."""
    rig = scene["rigs"][family]
    mapping = retarget_rig.detect(rig.obj)
    for (side, slot), name in rig.bones.items():
        assert mapping.get(side, slot) == name, (family, side, slot)
    options = TransferOptions(metacarpal_share=0.3 if family.startswith("unreal") else 0.0)
    report = retarget_rig.retarget(list(scene["sources"].values()), rig.obj, mapping, options, take="take")
    assert report.frames == (1, FRAMES)
    if family == "custom":
        assert sorted(report.unmatched) == ["left pinky: no matching bone (the finger stays as it is)",
                                    "right pinky: no matching bone (the finger stays as it is)"]
    else:
        assert report.unmatched == []
    worst = {}
    for track in scene["capture"].tracks:
        src_d, src_c = source_truth(track)
        dirs, curls, tips = target_measure(rig, track.side, range(1, FRAMES + 1))
        have = ~np.isnan(dirs[0, :, 0])
        err = angles_deg(dirs[:, have], src_d[:, have])
        twist = twist_deg(dirs[:, have], curls[:, have], src_c[:, have])
        worst[track.side] = (float(err.max()), float(twist.max()))
        assert err.max() < 3.0, (family, track.side, err.max(axis=0))
        assert twist.max() < 5.0, (family, track.side, twist.max(axis=0))
        # the fist (frame 2): every fingertip on the palm side, further than at rest
        fingers = [k for k, f in enumerate(FINGERS) if rig.bones.get((track.side, f + "3"))]
        assert np.all(tips[1, fingers] > tips[0, fingers] + 0.01), (family, tips[:2])
        assert np.all(tips[1, fingers] > 0.005), tips[1]
    if family == "rigify generated":         # the deforming DEF- bones follow the keyed controls
        from tests.retarget_rigs import TargetRig
        deform = {k: (n if k[1] == "wrist" or k[1].endswith("0") else "DEF-" + n) for k, n in rig.bones.items()}
        for track in scene["capture"].tracks:
            src_d, _ = source_truth(track)
            dirs, _, _ = target_measure(TargetRig(rig.obj, family, deform, rig.palm_normal, []), track.side,
                                        range(1, FRAMES + 1))
            worst[track.side + " DEF-"] = float(angles_deg(dirs[:, 1:], src_d[:, 1:]).max())
            assert worst[track.side + " DEF-"] < 3.0
    print(f"\n{family}: worst direction / twist error (degrees): {worst}")


def test_wrist_rotation_and_location_follow_the_captured_hand(scene):
    """With the wrist options on (a Mixamo rig: object scaled 0.01 and turned, random rolls), the
    target hand's frame matches the captured hand's frame in world space and its wrist sits on
    the captured wrist; the fingers still follow."""
    rig = scene["rigs"]["mixamo"]
    retarget_rig.retarget(list(scene["sources"].values()), rig.obj, None,
                          TransferOptions(wrist_rotation=True, wrist_location=True), take="take")
    for track in scene["capture"].tracks:
        src_d, _, src_H = source_truth(track, hand_frames=True)
        measured = []
        dirs, _, _ = target_measure(rig, track.side, range(1, FRAMES + 1), measured)
        source = scene["sources"][track.side]
        for f, ((H, wrist), Hs) in enumerate(zip(measured, src_H)):
            bpy.context.scene.frame_set(f + 1)
            R = H.T @ (CV_TO_WORLD @ Hs)                       # the capture rig's world is diag(1, -1, -1) camera
            assert np.degrees(np.arccos(np.clip((np.trace(R) - 1) / 2, -1, 1))) < 1.0
            want = np.array(source.matrix_world @ source.pose.bones[0].head)
            assert np.allclose(wrist, want, atol=1e-5), (wrist, want)
        have = ~np.isnan(dirs[0, :, 0])
        assert angles_deg(dirs[:, have], src_d[:, have]).max() < 3.0


def test_untouched_bones_and_take(scene):
    """Only mapped bones get F-curves; the body keeps its own action; the take is an NLA strip."""
    rig = scene["rigs"]["unreal"]
    obj = rig.obj
    body_action = bpy.data.actions.new("body")
    obj.animation_data_create()
    # the body animation: the upper arm keyed by hand, active before the retarget
    pb = obj.pose.bones[rig.body[2]]
    pb.rotation_mode = "XYZ"
    obj.animation_data.action = body_action
    pb.rotation_euler = (0.2, 0, 0)
    pb.keyframe_insert("rotation_euler", frame=1)
    report = retarget_rig.retarget(list(scene["sources"].values()), obj, None, TransferOptions(), take="take")
    assert obj.animation_data.action == body_action
    tracks = [t for t in obj.animation_data.nla_tracks if t.name == "take"]
    assert len(tracks) == 1 and len(tracks[0].strips) == 1     # the second run replaced the first
    strip = tracks[0].strips[0]
    assert strip.name == "take" and strip.frame_start == 1 and strip.frame_end == FRAMES
    fcurves = slot_fcurves(strip)
    keyed = {fc.data_path.split('"')[1] for fc in fcurves}
    expected = {n for (s, slot), n in rig.bones.items() if slot != "wrist" and not slot.endswith("0")}
    assert keyed == expected == set(report.keyed)
    for fc in fcurves:
        co = np.empty(2 * len(fc.keyframe_points))
        fc.keyframe_points.foreach_get("co", co)
        assert co[0::2].tolist() == list(range(1, FRAMES + 1))
    for name in rig.body:
        if name != pb.name:
            assert np.allclose(np.array(obj.pose.bones[name].matrix_basis), np.eye(4)), name


def test_self_retarget_reproduces_the_capture_rig(scene):
    """handcap's rig onto a copy of itself, wrist rotation and location on: the same channels."""
    source = scene["sources"]["right"]
    copy = source.copy()
    copy.data = source.data.copy()
    copy.animation_data_clear()
    copy.location = (0.5, 0.1, -0.2)
    bpy.context.scene.collection.objects.link(copy)
    retarget_rig.retarget([source], copy, None, TransferOptions(wrist_rotation=True, wrist_location=True), take="self")
    scene_ = bpy.context.scene
    worst = 0.0
    for f in range(1, FRAMES + 1):
        scene_.frame_set(f)
        for b in source.pose.bones:
            a = np.array(b.matrix_channel)
            c = np.array(copy.pose.bones[b.name].matrix_channel)
            R = a[:3, :3].T.astype(np.float64) @ c[:3, :3]
            skew = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]]) / 2
            worst = max(worst, np.arcsin(min(1.0, np.linalg.norm(skew))))    # exact near zero
            assert np.trace(R) > 1.0                                      # ... and not near 180 degrees
            loc_a = np.array(source.matrix_world @ b.head)
            loc_c = np.array(copy.matrix_world @ copy.pose.bones[b.name].head)
            assert np.allclose(loc_a, loc_c, atol=1e-5), (b.name, loc_a, loc_c)
    print(f"\nself retarget: worst rotation difference {worst:.2e} rad")
    assert worst < 1e-4, worst


def test_panel_operators_detect_preset_and_retarget(scene, tmp_path):
    """The panel's path: pick the target (its bones are detected), save and load a preset, Retarget."""
    import blender_addon
    blender_addon.register()
    try:
        rig = scene["rigs"]["vrm"]
        settings = bpy.context.scene.handcap_retarget
        settings.target = rig.obj                                   # detection runs on the change
        rows = {(r.side, r.slot): r.bone for r in settings.bones}
        assert all(rows[k] == v for k, v in rig.bones.items())
        preset = tmp_path / "vrm.json"
        assert bpy.ops.handcap.retarget_preset_save(filepath=str(preset)) == {"FINISHED"}
        for r in settings.bones:
            r.bone = ""
        assert bpy.ops.handcap.retarget_preset_load(filepath=str(preset)) == {"FINISHED"}
        assert {(r.side, r.slot): r.bone for r in settings.bones} == rows
        settings.source = scene["sources"]["left"]                  # the right hand comes along
        assert bpy.ops.handcap.retarget() == {"FINISHED"}
        track = rig.obj.animation_data.nla_tracks["take"]
        keyed = {fc.data_path.split('"')[1] for fc in slot_fcurves(track.strips[0])}
        assert {n for (s, slot), n in rig.bones.items() if slot != "wrist"} == keyed
        settings.bones[0].bone = "no such bone"
        with pytest.raises(RuntimeError, match="Not retargeted: left wrist: no bone named 'no such bone'"):
            bpy.ops.handcap.retarget()
    finally:
        blender_addon.unregister()


def test_one_handed_rig_keys_its_hand_and_warns_about_the_other(scene, tmp_path):
    """A rig with only a right hand, a capture with both hands: the right hand is keyed (and
    follows), one warning names the left hand, nothing is left-handed; ``hand`` picks a side
    (the left one: nothing to key, an error). The same through the panel's Retarget and through
    ``handcap retarget`` (the warning printed once, ``--hand``)."""
    import subprocess
    import sys
    rig = build_family_rig("vrm", sides=("right",), seed=11, name="right hand only")
    sources = list(scene["sources"].values())
    fingers = {n for (side, slot), n in rig.bones.items() if slot != "wrist"}
    report = retarget_rig.retarget(sources, rig.obj, None, TransferOptions(), take="one hand")
    assert set(report.keyed) == fingers
    assert report.warnings == ["right hand only has no left hand (no left finger bone is mapped): the captured "
                               "left hand is not retargeted"]
    assert report.unmatched == []
    (track,) = [t for t in scene["capture"].tracks if t.side == "right"]
    dirs, _, _ = target_measure(rig, "right", range(1, FRAMES + 1))
    have = ~np.isnan(dirs[0, :, 0])
    assert angles_deg(dirs[:, have], source_truth(track)[0][:, have]).max() < 3.0
    only_right = retarget_rig.retarget(sources, rig.obj, None, TransferOptions(), take="one hand", hand="right")
    assert set(only_right.keyed) == fingers and only_right.warnings == []
    with pytest.raises(ValueError, match="right hand only has no left hand: no bone of right hand only is mapped"):
        retarget_rig.retarget(sources, rig.obj, None, TransferOptions(), take="left", hand="left")

    import blender_addon
    blender_addon.register()
    try:
        settings = bpy.context.scene.handcap_retarget
        settings.target, settings.source, settings.both_hands = rig.obj, scene["sources"]["left"], True
        assert bpy.ops.handcap.retarget() == {"FINISHED"}            # the right hand came along; the left is left out
        track = rig.obj.animation_data.nla_tracks["take"]
        keyed = {fc.data_path.split('"')[1] for fc in slot_fcurves(track.strips[0])}
        assert keyed == fingers
    finally:
        blender_addon.unregister()

    rig_path = tmp_path / "right hand.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(rig_path), copy=True)

    def cli(*extra):
        return subprocess.run([sys.executable, "-m", "core", "retarget", scene["path"], scene["path"], "--rig",
                               str(rig_path), "--armature", rig.obj.name, *extra], capture_output=True, text=True,
                              cwd=REPO, timeout=300)
    both = cli("-o", str(tmp_path / "both.blend"))
    assert both.returncode == 0, both.stdout + both.stderr
    assert both.stderr.count("warning: right hand only has no left hand") == 1, both.stderr     # two takes, one line
    left = cli("--hand", "left", "-o", str(tmp_path / "left.blend"))
    assert left.returncode == 1 and "right hand only has no left hand" in left.stderr, left.stderr
    assert not (tmp_path / "left.blend").exists()


def hand_view(obj, bones: dict, side: str, normal_rest: np.ndarray) -> tuple:
    """(centre, hand frame (3, 3)) of a posed hand at the current frame, world space, from its
    wrist and knuckles; the palm normal is the rest one carried by the wrist bone."""
    M = np.array(obj.matrix_world)
    pb = obj.pose.bones
    head = {s: M[:3, :3] @ np.array(pb[n].head) + M[:3, 3] for s, n in bones.items() if n}
    Rw = M[:3, :3] / np.linalg.norm(M[:3, 0])
    turn = Rw @ np.array(pb[bones["wrist"]].matrix)[:3, :3] @ np.array(obj.data.bones[bones["wrist"]].matrix_local)[:3, :3].T @ Rw.T
    H = frame_of(head["wrist"], head["middle1"], turn @ normal_rest)
    return head["wrist"] + 0.09 * H[:, 1], H


def render_tile(camera, centre, H, path: str) -> np.ndarray:
    """Render the scene through ``camera`` placed on the hand's thumb-and-palm side, looking at
    ``centre`` with the fingers up; returns the image (BGR)."""
    import cv2
    import mathutils
    view = H @ np.array([0.55, -0.25, 0.8])                       # from the thumb side, in front of the palm
    view /= np.linalg.norm(view)
    z = view                                                      # the camera looks down its -z
    y = H[:, 1] - (H[:, 1] @ z) * z
    y /= np.linalg.norm(y)
    R = np.stack([np.cross(y, z), y, z], 1)
    camera.matrix_world = mathutils.Matrix.Translation(centre + 0.5 * view) @ mathutils.Matrix(R.tolist()).to_4x4()
    scene = bpy.context.scene
    scene.render.filepath = path
    bpy.ops.render.render(write_still=True)
    return cv2.imread(path)


@pytest.mark.skipif(os.environ.get("HANDCAP_WRITE_DOCS") != "1", reason="writes docs/retarget_render.png")
def test_docs_picture_source_and_retargeted_hands(scene, tmp_path):
    """The source hand and three retargeted characters at rest, in a fist, spread, and a random
    pose, each seen from the same place relative to its own hand (docs/retarget_render.png)."""
    import cv2
    from tests.retarget_rigs import add_skinned_mesh
    rows = [("handcap capture rig", None), ("Rigify metarig", "rigify metarig"), ("Mixamo", "mixamo"),
            ("Unreal / MetaHuman", "unreal")]
    colours = [(0.85, 0.65, 0.5, 1), (0.45, 0.65, 0.9, 1), (0.55, 0.8, 0.5, 1), (0.85, 0.55, 0.8, 1)]
    from tests.test_blender_support import model_capture
    capture, _ = model_capture(("right",), 6, seed=2)                 # the open hand model's mesh
    track = capture.tracks[0]
    J = track.rest_joints.astype(np.float64)
    n = palm_of(J[0], J[1], J[7], "right")
    track.pose[0, 1:] = 0
    track.pose[1, 1:] = fist_poses(track, np.radians(75))[1:]
    track.pose[2, 1:] = 0
    for first, share in ((1, 1), (4, 0.3), (10, -0.5), (7, -1)):
        track.pose[2, first] = np.radians(14) * share * n
    track.pose[2, 13] = np.radians(-20) * np.cross(rest_directions(J)[13], n)
    (source, source_mesh), = import_capture.build_capture(capture, bpy.context, str(tmp_path / "open hand.npz")).rigs
    options = TransferOptions(metacarpal_share=0.3)
    meshes = [source_mesh]
    for label, family in rows[1:]:
        rig = scene["rigs"][family]
        retarget_rig.retarget([source], rig.obj, None, options, take="docs")
        meshes.append(add_skinned_mesh(rig, [n for (s, k), n in rig.bones.items() if s == "right"]))
    views = [(source, dict(zip(JOINTS, [b + ".R" for b in retarget_rig.rig_data.naming.RIGIFY_HAND_BONES])),
              CV_TO_WORLD @ n)]
    for label, family in rows[1:]:
        rig = scene["rigs"][family]
        views.append((rig.obj, {k: n for (s, k), n in rig.bones.items() if s == "right"}, rig.palm_normal["right"]))
    sc = bpy.context.scene
    sc.render.engine = "BLENDER_WORKBENCH"
    sc.display.shading.color_type = "OBJECT"
    sc.display.shading.light = "STUDIO"
    sc.render.resolution_x = sc.render.resolution_y = 240
    sc.render.image_settings.file_format = "PNG"
    world = bpy.data.worlds.new("grey")
    world.color = (0.92, 0.92, 0.9)
    sc.world = world
    camera = bpy.data.objects.new("docs camera", bpy.data.cameras.new("docs camera"))
    camera.data.type = "ORTHO"
    camera.data.ortho_scale = 0.26
    sc.collection.objects.link(camera)
    sc.camera = camera
    frames = [(1, "rest"), (2, "fist"), (3, "spread"), (6, "random pose")]
    tiles = []
    for (label, _), mesh, colour, (obj, bones, normal) in zip(rows, meshes, colours, views):
        for other in bpy.data.objects:
            other.hide_render = other.type == "MESH" and other is not mesh
        mesh.color = colour
        row = []
        for frame, name in frames:
            sc.frame_set(frame)
            centre, H = hand_view(obj, bones, "right", normal)
            img = render_tile(camera, centre, H, str(tmp_path / f"{label}_{frame}.png"))
            assert (np.abs(img.astype(int) - img[0, 0]).sum(2) > 40).mean() > 0.02, (label, frame)   # a hand is there
            cv2.putText(img, f"{label}", (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (40, 40, 40), 1, cv2.LINE_AA)
            cv2.putText(img, name, (6, 232), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (40, 40, 40), 1, cv2.LINE_AA)
            row.append(img)
        tiles.append(np.concatenate(row, 1))
    picture = np.concatenate(tiles, 0)
    os.makedirs(os.path.dirname(DOCS_PICTURE), exist_ok=True)
    cv2.imwrite(DOCS_PICTURE, picture)


def test_headless_fbx_and_batch_blend_reload_with_the_same_fingers(scene, tmp_path):
    """`handcap retarget ... -o OUT.fbx` re-imported, and batch.py --rig's .blend reopened: the
    finger directions still follow the source (each checked against the truth as above)."""
    import subprocess
    import sys
    rig = scene["rigs"]["mixamo"]
    from tests.retarget_rigs import TargetRig, add_skinned_mesh
    add_skinned_mesh(rig)
    rig_path = tmp_path / "characters.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(rig_path), copy=True)
    objects_in_rig_file = sorted(o.name for o in bpy.data.objects)
    capture = scene["path"]
    out_fbx = tmp_path / "out" / "hands.fbx"
    run = subprocess.run([sys.executable, "-m", "core", "retarget", capture, "--rig", str(rig_path),
                          "--armature", rig.obj.name, "-o", str(out_fbx)], capture_output=True, text=True,
                         cwd=REPO, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"handcap retarget: 1 take(s) -> {out_fbx}" in run.stdout
    batch = subprocess.run([sys.executable, os.path.join(REPO, "blender_addon", "batch.py"), capture, "-o",
                            str(tmp_path / "batch"), "--rig", str(rig_path), "--armature", rig.obj.name],
                           capture_output=True, text=True, cwd=REPO, timeout=300)
    assert batch.returncode == 0, batch.stdout + batch.stderr
    ambiguous = subprocess.run([sys.executable, "-m", "core", "retarget", capture, "--rig", str(rig_path),
                                "-o", str(tmp_path / "x.blend")], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert ambiguous.returncode == 1 and "name one with --armature" in ambiguous.stderr
    assert not (tmp_path / "x.blend").exists()

    name = rig.obj.name
    truth = [source_truth(track) for track in scene["capture"].tracks]
    sides = [track.side for track in scene["capture"].tracks]
    reset_scene()
    bpy.ops.import_scene.fbx(filepath=str(out_fbx))
    (imported,) = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    anim = imported.animation_data
    assert anim is not None and anim.action is not None
    # the FBX take starts at frame 1 like the NLA strip
    reloaded = TargetRig(imported, "mixamo (fbx)", rig.bones, rig.palm_normal, [])
    for side, (src_d, _) in zip(sides, truth):
        dirs, _, _ = target_measure(reloaded, side, range(1, FRAMES + 1))
        have = ~np.isnan(dirs[0, :, 0])
        err = angles_deg(dirs[:, have], src_d[:, have])
        print(f"\nFBX re-import {side}: worst direction error {err.max():.4f} degrees")
        assert err.max() < 3.0, err.max(axis=0)
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "batch" / "take.blend"))
    obj = bpy.data.objects[name]
    assert [t.name for t in obj.animation_data.nla_tracks] == ["take"]
    reopened = TargetRig(obj, "mixamo (batch)", rig.bones, rig.palm_normal, [])
    for side, (src_d, _) in zip(sides, truth):
        dirs, _, _ = target_measure(reopened, side, range(1, FRAMES + 1))
        have = ~np.isnan(dirs[0, :, 0])
        assert angles_deg(dirs[:, have], src_d[:, have]).max() < 3.0
    assert sorted(o.name for o in bpy.data.objects) == objects_in_rig_file   # the capture's own rigs are gone
