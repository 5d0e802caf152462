"""The capture file: round trip through disk, and validation that names the first problem."""

import os

import numpy as np
import pytest

from blender_addon.capture_format import Capture, CaptureError, CaptureViews, load_capture, save_capture
from core.capture import default_intrinsics, track_from_layer
from core.hand_model import HandLayer


def make_capture(model, frames=5, seed=0):
    rng = np.random.default_rng(seed)
    pose = (rng.normal(size=(frames, 16, 3)) * 0.3).astype(np.float32)
    transl = np.tile(np.array([0.0, 0.0, 0.6], np.float32), (frames, 1))
    K = default_intrinsics(640, 480)
    track = track_from_layer(HandLayer(model), rng.normal(size=10), pose, transl, K)
    return Capture(hand_model=model.name, source_path="clip.mp4", image_size=np.array([640, 480]), K=K,
                   fps=30.0, tracks=[track])


def test_round_trip(tmp_path, open_right, open_left):
    capture = make_capture(open_right)
    capture.tracks.append(make_capture(open_left, frames=3, seed=1).tracks[0])
    path = tmp_path / "c.npz"
    save_capture(capture, str(path))
    loaded = load_capture(str(path))
    assert [t.side for t in loaded.tracks] == ["right", "left"]
    assert loaded.fps == 30.0 and loaded.source_path == "clip.mp4" and loaded.hand_model == "open_hand"
    for a, b in zip(capture.tracks, loaded.tracks):
        for key in ("rest_vertices", "faces", "skin_weights", "pose", "transl", "joints_3d", "keypoints_2d", "valid"):
            np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
        assert list(b.joint_names) == list(a.joint_names)
    # readable with numpy alone, keys as documented
    with np.load(path, allow_pickle=False) as z:
        assert str(z["format"]) == "handcap-capture" and int(z["num_tracks"]) == 2
        assert z["track1/pose"].shape == (3, 16, 3)
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_keypoints_2d_are_the_projection_of_joints_3d(open_right):
    track = make_capture(open_right).tracks[0]
    K = default_intrinsics(640, 480)
    x, y, z = track.joints_3d[..., 0], track.joints_3d[..., 1], track.joints_3d[..., 2]
    np.testing.assert_allclose(track.keypoints_2d[..., 0], K[0, 0] * x / z + K[0, 2], rtol=1e-5)
    np.testing.assert_allclose(track.keypoints_2d[..., 1], K[1, 1] * y / z + K[1, 2], rtol=1e-5)


def _arrays(capture, tmp_path):
    path = tmp_path / "ok.npz"
    save_capture(capture, str(path))
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize("edit, message", [
    (lambda a: a.pop("track0/pose"), "missing key 'track0/pose'"),
    (lambda a: a.update({"version": np.array(99)}), "unknown format version 99"),
    (lambda a: a.update({"format": np.array("something-else")}), "'format' is 'something-else'"),
    (lambda a: a.update({"track0/pose": a["track0/pose"][:, :15]}), r"'track0/pose' must have shape \(5, 16, 3\)"),
    (lambda a: a["track0/transl"].__setitem__((2, 1), np.nan), "'track0/transl' contains NaN"),
    (lambda a: a.update({"track0/side": np.array("middle")}), "'track0/side' is 'middle'"),
    (lambda a: a.update({"K": np.eye(4, dtype=np.float32)}), r"'K' must have shape \(3, 3\)"),
    (lambda a: a.update({"track0/faces": a["track0/faces"] + 100000}), "'track0/faces' index out of range"),
    (lambda a: a.update({"track0/valid": a["track0/valid"].astype(np.float32)}), "'track0/valid' must be boolean"),
    (lambda a: a.update({"track0/skin_weights": a["track0/skin_weights"] * 2}), "rows must be non-negative and sum to 1"),
    (lambda a: a.update({"num_tracks": np.array(2)}), "missing key 'track1/side'"),
    (lambda a: a.update({"track0/interpolated": np.zeros(4, bool)}), r"'track0/interpolated' must have shape \(5,\)"),
    (lambda a: (a["track0/valid"].__setitem__(3, False), a["track0/interpolated"].__setitem__(3, True)),
     "'track0/interpolated' frames must be valid"),
])
def test_validation_names_the_first_problem(tmp_path, open_right, edit, message):
    arrays = _arrays(make_capture(open_right), tmp_path)
    edit(arrays)
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    with pytest.raises(CaptureError, match=message):
        load_capture(str(bad))


def test_interpolated_frames_round_trip_and_default_to_false(tmp_path, open_right):
    capture = make_capture(open_right)
    track = capture.tracks[0]
    track.valid[3] = False
    track.interpolated = np.array([False, True, True, False, False])
    path = tmp_path / "c.npz"
    save_capture(capture, str(path))
    assert load_capture(str(path)).tracks[0].interpolated.tolist() == [False, True, True, False, False]
    older = _arrays(capture, tmp_path)
    del older["track0/interpolated"]                  # a file from before the key: every frame seen or invalid
    np.savez(tmp_path / "older.npz", **older)
    loaded = load_capture(str(tmp_path / "older.npz")).tracks[0]
    assert loaded.interpolated.dtype == bool and loaded.interpolated.tolist() == [False] * 5


def two_views() -> CaptureViews:
    """View 0 the capture's own camera; view 1 turned 30 degrees about y, 40 cm to the side."""
    angle = np.deg2rad(30.0)
    turn = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    K = default_intrinsics(640, 480)
    return CaptureViews(K=np.stack([K, K]), R=np.stack([np.eye(3), turn]), t=np.array([[0, 0, 0], [-0.4, 0, 0.1]]),
                        image_size=np.array([[640, 480], [640, 480]]), source_path=np.array(["a.mp4", "b.mp4"]),
                        frame_offset=np.array([0, 3]))


def test_views_round_trip_and_older_files_have_none(tmp_path, open_right):
    capture = make_capture(open_right)
    assert load_capture(_save(capture, tmp_path / "one.npz")).views is None
    capture.views = two_views()
    loaded = load_capture(_save(capture, tmp_path / "two.npz")).views
    assert loaded.num_views == 2 and loaded.source_path.tolist() == ["a.mp4", "b.mp4"]
    assert loaded.frame_offset.tolist() == [0, 3]
    np.testing.assert_allclose(loaded.R[1], capture.views.R[1], atol=1e-6)
    np.testing.assert_allclose(loaded.t[1], [-0.4, 0, 0.1], atol=1e-7)


def _save(capture, path) -> str:
    save_capture(capture, str(path))
    return str(path)


@pytest.mark.parametrize("edit, message", [
    (lambda a: a.pop("views/t"), "'views/' keys come all together; missing 'views/t'"),
    (lambda a: a["views/R"].__setitem__((1, 0, 0), 2.0), "'views/R' must hold rotations"),
    (lambda a: a["views/t"].__setitem__((0, 2), 0.5), "view 0 is the capture's own camera"),
    (lambda a: a.update({"views/K": a["views/K"][:1]}), r"'views/R' must have shape \(1, 3, 3\)"),
])
def test_views_validation(tmp_path, open_right, edit, message):
    capture = make_capture(open_right)
    capture.views = two_views()
    arrays = _arrays(capture, tmp_path)
    edit(arrays)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(CaptureError, match=message):
        load_capture(str(tmp_path / "bad.npz"))


def test_unreadable_files(tmp_path):
    with pytest.raises(CaptureError, match="no such file"):
        load_capture(str(tmp_path / "nope.npz"))
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"")
    with pytest.raises(CaptureError, match="not a capture file"):
        load_capture(str(junk))
    text = tmp_path / "text.npz"                 # before: "pickled data when allow_pickle=False"
    text.write_text("hello")
    with pytest.raises(CaptureError, match=r"text.npz: not a capture file \(a capture file is an .npz archive"):
        load_capture(str(text))
    good = tmp_path / "good.npz"
    np.savez_compressed(good, format=np.array("handcap-capture"))
    damaged = bytearray(good.read_bytes())
    damaged[len(damaged) // 3] ^= 0xFF            # inside the compressed data: zlib or CRC error
    good.write_bytes(bytes(damaged))
    with pytest.raises(CaptureError, match="not a readable capture file|not a capture file"):
        load_capture(str(good))


def test_invalid_capture_is_not_written(tmp_path, open_right):
    capture = make_capture(open_right)
    capture.tracks[0].pose = capture.tracks[0].pose[:, :3]
    with pytest.raises(CaptureError):
        save_capture(capture, str(tmp_path / "out.npz"))
    assert os.listdir(tmp_path) == []
