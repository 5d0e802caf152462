"""Live capture: ``handcap live`` on a video file standing in for a camera, read by the add-on's
plain stream reader, and the Live Capture session (headless bpy) driving a rig and keying it.

The clip is a synthetic right hand sliding over a grey frame; ``--box`` puts the hand where it is
(detection is tested elsewhere), so every frame has one right hand.
"""

from __future__ import annotations

import os
import sys
import time

import cv2
import numpy as np
import pytest

from blender_addon import live_pose, live_stream
from blender_addon.capture_format import load_capture

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FRAMES, FPS = 10, 24
ENGINE = ["--box", "10,0,300,240", "--fit-steps", "5", "--device", "cpu", "--landmarks", "lite"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> str:
    """(FRAMES frames, 320x240, FPS) a right-hand render moving 4 px right per frame."""
    from training.synth import SyntheticHands
    sample = SyntheticHands(count=1, seed=5, split="heldout", size=256)[0]
    assert not bool(sample["is_left"])
    hand = cv2.resize(cv2.cvtColor(np.ascontiguousarray(sample["image"].permute(1, 2, 0).numpy()), cv2.COLOR_RGB2BGR),
                      (240, 240))
    path = str(tmp_path_factory.mktemp("live") / "camera.mp4")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), FPS, (320, 240))
    for i in range(FRAMES):
        frame = np.full((240, 320, 3), 90, np.uint8)
        frame[:, 10 + 4 * i:250 + 4 * i] = hand
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture
def repo_on_path(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", REPO)


@pytest.fixture(scope="module")
def streamed(clip, tmp_path_factory):
    """Every record of one whole run, read through the add-on's LiveStream."""
    rig = str(tmp_path_factory.mktemp("rig") / "rig.npz")
    env = dict(os.environ, PYTHONPATH=REPO)
    stream = live_stream.start_live(sys.executable, clip, rig, ENGINE, env=env)
    started = time.monotonic()
    records = stream.wait(timeout=300)
    return stream, records, rig, time.monotonic() - started


def test_live_streams_one_record_per_frame(streamed):
    stream, records, rig, _ = streamed
    assert stream.returncode == 0 and stream.error is None, stream._stderr
    start, frames, end = records[0], records[1:-1], records[-1]
    assert start["type"] == "start" and (start["width"], start["height"]) == (320, 240) and start["fps"] == FPS
    assert [r["frame"] for r in frames] == list(range(FRAMES))
    assert end == {**end, "type": "end", "frames": FRAMES, "reason": "input ended"}
    K = np.asarray(start["K"])
    for r in frames:
        assert r["time"] == pytest.approx(r["frame"] / FPS, abs=1e-3)
        assert r["latency_ms"] > 0 and r["fps"] > 0
        (hand,) = r["hands"]
        assert hand["side"] == "right" and 0 <= hand["confidence"] <= 1
        assert np.shape(hand["pose"]) == (16, 3) and np.shape(hand["transl"]) == (3,)
        assert np.shape(hand["joints_3d"]) == (21, 3) and np.shape(hand["keypoints_2d"]) == (21, 2)
        # the pixels are the 3D points seen through the stream's camera (computed here, not by the engine)
        joints = np.asarray(hand["joints_3d"])
        uv = joints @ K.T
        np.testing.assert_allclose(np.asarray(hand["keypoints_2d"]), uv[:, :2] / uv[:, 2:], atol=0.05)
    capture = load_capture(rig)
    assert sorted(t.side for t in capture.tracks) == ["left", "right"]
    assert all(np.allclose(t.pose, 0) for t in capture.tracks)


def test_live_bad_source_is_one_line(repo_on_path, tmp_path):
    stream = live_stream.start_live(sys.executable, str(tmp_path / "missing.mp4"))
    stream.wait(timeout=60)
    assert stream.returncode == 2 and "no such file" in stream.error


def test_camera_reader_hands_on_only_the_newest_frame(clip):
    """A slow engine gets the newest frame each time, never an old one (a file read like a camera)."""
    import threading
    from core.engine.live import LatestFrame
    capture = cv2.VideoCapture(clip)
    reader = LatestFrame(capture)
    try:
        seen = []
        for index, bgr, grabbed in reader.frames(threading.Event()):
            assert bgr.shape == (240, 320, 3) and grabbed <= time.perf_counter()
            seen.append(index)
            time.sleep(0.05)
    finally:
        reader.close()
        capture.release()
    assert seen and seen == sorted(set(seen)) and seen[-1] == FRAMES - 1


def test_camera_reader_paced_like_a_camera(clip):
    """--as-camera: the file plays at its frame rate; a consumer slower than that skips frames."""
    import threading
    from core.engine.live import LatestFrame
    capture = cv2.VideoCapture(clip)
    reader = LatestFrame(capture, pace_fps=FPS)
    start = time.perf_counter()
    try:
        seen = []
        for index, _, _ in reader.frames(threading.Event()):
            seen.append(index)
            time.sleep(2.5 / FPS)
    finally:
        reader.close()
        capture.release()
    assert time.perf_counter() - start >= (FRAMES - 1) / FPS
    assert seen == sorted(set(seen)) and len(seen) < FRAMES and seen[-1] == FRAMES - 1


def test_timer_follows_the_engine_rate():
    assert live_pose.timer_interval(0.0) == pytest.approx(1 / 60)
    assert live_pose.timer_interval(30.0) == pytest.approx(1 / 60)       # twice the record rate
    assert live_pose.timer_interval(10.0) == pytest.approx(1 / 20)
    assert live_pose.timer_interval(2.0) == pytest.approx(1 / 15)        # polled at least 15 times a second
    assert live_pose.timer_interval(500.0) == pytest.approx(1 / 120)


def test_causal_smoother_off_passes_records_through():
    raw = live_pose.CausalSmoother(0.0)
    raw(np.array([[1.0, 0, 0, 0]]), np.zeros(3), 0.0)
    quats, location = raw(np.array([[0.0, 1, 0, 0]]), np.ones(3), 1 / 30)
    np.testing.assert_allclose(quats, [[0.0, 1, 0, 0]])
    np.testing.assert_allclose(location, 1.0)


def test_causal_smoother_never_uses_later_records():
    rng = np.random.default_rng(0)
    times = np.arange(40) / 30.0
    quats = rng.normal(size=(40, 16, 4))
    quats /= np.linalg.norm(quats, axis=-1, keepdims=True)
    locations = rng.normal(size=(40, 3))
    changed = locations.copy()
    changed[25:] += 1.0                                       # a different future from record 25 on
    first, second = live_pose.CausalSmoother(0.7), live_pose.CausalSmoother(0.7)
    for i in range(40):
        (qa, la), (qb, lb) = first(quats[i], locations[i], times[i]), second(quats[i], changed[i], times[i])
        if i < 25:
            np.testing.assert_array_equal(la, lb)
            np.testing.assert_array_equal(qa, qb)
        np.testing.assert_allclose(np.linalg.norm(qa, axis=-1), 1.0)
    assert np.abs(la - lb).max() > 0.1


@pytest.mark.parametrize("strength", [0.3, 0.5, 1.0])
def test_causal_smoother_lag_on_a_steady_move(strength):
    """A wrist moving at v: the output trails by (1 - a) / a frames, a the exponential filter's share at
    its cutoff (computed here from the One Euro definition, not with the add-on's code), less than the
    time constant 1 / (2 pi (f + beta v)) the add-on states."""
    v, dt = 0.25, 1 / 30.0                                    # m/s, s
    smoother = live_pose.CausalSmoother(strength)
    quats = np.tile([1.0, 0, 0, 0], (16, 1))
    for i in range(300):
        _, location = smoother(quats, np.array([v * i * dt, 0, 0]), i * dt)
    # steady state: the speed seen is the step from the last output, v / a, so a = share(f + beta v / a)
    share = 0.5
    for _ in range(200):
        share = 1.0 / (1.0 + 1.0 / (2 * np.pi * (10.0 * 0.1 ** strength + 20.0 * v / share) * dt))
    lag_s = (1 - share) / share * dt
    cutoff = 10.0 * 0.1 ** strength + 20.0 * v
    assert abs((v * 299 * dt - location[0]) / v - lag_s) < 1e-6
    assert lag_s < 1.0 / (2 * np.pi * cutoff) + 1e-9           # at most the filter's time constant


# --- the Live Capture session in Blender ------------------------------------------------

@pytest.fixture
def addon():
    bpy = pytest.importorskip("bpy")
    import blender_addon
    blender_addon.register()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    yield bpy
    blender_addon.unregister()


def rodrigues(aa) -> np.ndarray:
    return cv2.Rodrigues(np.asarray(aa, np.float64).reshape(3, 1))[0]


def expected_bone_rotations(pose: np.ndarray, parents, rest: np.ndarray) -> np.ndarray:
    """Armature-space rotations (J, 3, 3) of posed bones by forward kinematics of the record's pose:
    G_j = G_parent R_j, bone = G_j @ rest_j."""
    world = []
    for j, p in enumerate(parents):
        R = rodrigues(pose[j])
        world.append(R if p < 0 else world[p] @ R)
    return np.stack(world) @ rest


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_live_session_drives_the_rig_and_records(addon, clip, repo_on_path):
    bpy = addon
    from blender_addon.ops_live import LiveSession
    context = bpy.context
    context.scene.handcap.live_record = True
    session = LiveSession(clip, sys.executable, ENGINE, smoothing=0.0).start()
    pid, frames = session.stream.pid, []
    try:
        deadline = time.monotonic() + 240
        while len(frames) < 3 and time.monotonic() < deadline and not session.stream.finished:
            frames += [r for r in session.step(context) if r["type"] == "frame"]
            time.sleep(0.05)
        assert len(frames) >= 3, session.stream._stderr
        rig = session.rigs["right"]
        armature = rig["armature"]
        assert not armature.hide_viewport and session.rigs["left"]["armature"].hide_viewport   # no left hand seen
        context.view_layer.update()
        hand = frames[-1]["hands"][0]
        posed = np.array([np.array(b.matrix)[:3, :3] for b in armature.pose.bones])
        parents = [-1 if b.parent is None else rig["bones"].index(b.parent.name) for b in armature.data.bones]
        np.testing.assert_allclose(posed, expected_bone_rotations(np.asarray(hand["pose"]), parents, rig["rest"]),
                                   atol=1e-4)
        np.testing.assert_allclose(armature.pose.bones[0].head, hand["joints_3d"][0], atol=1e-5)
        assert state_numbers(context) == (session.stream.frames, session.stream.latency_ms)
    finally:
        context.scene.handcap.live_record = True
        session.stop(context)
    assert not pid_alive(pid)
    assert session.stream.end["reason"] in ("stopped", "input ended")
    seen = sorted({r["frame"] for r in frames})
    action = armature.animation_data.action
    keyed = sorted({k.co[0] for fc in action.layers[0].strips[0].channelbags[0].fcurves for k in fc.keyframe_points})
    # every frame handled before Stop is keyed at its source frame + 1 (frames read while stopping too)
    assert set(f + 1.0 for f in seen) <= set(keyed) and keyed == [float(f) for f in range(1, len(keyed) + 1)]


def state_numbers(context) -> tuple:
    state = context.window_manager.handcap
    return state.live_frames, pytest.approx(state.live_latency_ms, abs=0.01)


def test_start_live_with_the_panels_defaults(addon, clip, repo_on_path):
    """The panel's default settings (Maximum Hands 0: every hand) give ``handcap live`` arguments
    that its real parser accepts, and a session started the way Start Live starts it (a video
    file as the source) streams frames with no engine error."""
    bpy = addon
    from blender_addon.ops_live import LiveSession, engine_arguments
    from core.cli import build_parser
    settings = bpy.context.scene.handcap
    settings.live_source = clip
    assert settings.max_hands == 0                                  # the panel's default
    extra = engine_arguments(settings)
    parsed = build_parser().parse_args(["live", clip, *extra])      # SystemExit(2) on an argument it refuses
    assert parsed.max_hands == 2 and parsed.as_camera
    session = LiveSession(clip, sys.executable, extra, settings.smoothing).start()
    frames = []
    try:
        deadline = time.monotonic() + 240
        while not frames and time.monotonic() < deadline and not session.stream.finished:
            frames += [r for r in session.step(bpy.context) if r["type"] == "frame"]
            time.sleep(0.05)
    finally:
        session.stop(bpy.context)
    assert session.stream.error is None and frames, session.stream._stderr
