"""The inference engine end to end: photos, videos and bad inputs through ``python -m core estimate``
into capture files and .blend scenes, plus unit tests of its geometry, smoothing and tracking.

The network is an untrained HAMR (seeded, saved once per module): the refinement fits MediaPipe's
landmarks, so the hands still land where they are in the image. Test images are synthetic
renders (training.synth, heldout split) whose hands MediaPipe is first checked to find.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from blender_addon.capture_format import load_capture
from core.crops import crop_matrix, crop_to_source, normalize_keypoints
from core.engine.detect import HandDetector
from core.engine.fitting import wrist_position
from core.engine.network import EngineError, resolve_weights
from core.engine.pipeline import HandEstimate
from core.engine.tracking import Tracker

from .conftest import REPO

SEED, COUNT, SIZE = 5, 40, 384     # synthetic renders searched for usable test hands
MP_TOLERANCE = 0.15                # a usable render: MediaPipe's landmarks within 15% of the hand box
FIT_TOLERANCE = 0.25               # the engine's keypoints within 25% of the hand box of the truth
VIDEO_FPS, VIDEO_FRAMES, VIDEO_BLANK = 24, 20, (9, 10)


# ------------------------------------------------------------------------------------ helpers

def estimate(*args, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -m core estimate ARGS`` from the repository root."""
    return subprocess.run([sys.executable, "-m", "core", "estimate", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def hand_box(keypoints: np.ndarray) -> float:
    """Longer side of the keypoints' bounding box, pixels."""
    return float((keypoints.max(0) - keypoints.min(0)).max())


def keypoint_error(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean keypoint distance as a fraction of the true hand box."""
    return float(np.linalg.norm(found - truth, axis=-1).mean() / hand_box(truth))


def bgr(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.split("\n") if "error:" in line]


def armature_and_mesh():
    import bpy
    arms = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    meshes = [o for o in bpy.data.objects if o.type == "MESH"]
    return arms, meshes


# ----------------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> str:
    """An untrained small HAMR network (ResNet-18, 128 px crops), seeded."""
    from core.networks import NetworkConfig, build_network, save_weights
    path = str(tmp_path_factory.mktemp("weights") / "hamr_untrained.safetensors")
    cfg = NetworkConfig(arch="hamr", backbone="resnet18", input_size=128)
    torch.manual_seed(0)
    save_weights(build_network(cfg), cfg, path)
    return path


@pytest.fixture(scope="module")
def renders() -> dict:
    """Synthetic renders picked by what MediaPipe makes of them:

    right / left: lists of samples where it finds exactly one hand, of the true side, with its
    landmarks near the truth; hidden: a right hand fully in the frame that it does not find.
    Each sample: {"index", "rgb" (H, W, 3) uint8, "keypoints" (21, 2) truth, "landmarks" (21, 2) or None}.
    """
    from training.synth import SyntheticHands
    ds = SyntheticHands(count=COUNT, seed=SEED, split="heldout", size=SIZE)
    picked = {"right": [], "left": [], "hidden": []}
    with HandDetector(max_hands=2) as detector:
        for i in range(COUNT):
            sample = ds[i]
            rgb = np.ascontiguousarray(sample["image"].permute(1, 2, 0).numpy())
            truth = sample["keypoints_2d"].numpy().astype(np.float64)
            side = "left" if bool(sample["is_left"]) else "right"
            found = detector.detect(rgb, search=True)      # as the engine looks at photos
            item = {"index": i, "rgb": rgb, "keypoints": truth, "landmarks": None}
            if (len(found) == 1 and found[0].side == side and found[0].source != "sweep"   # two-hand images get no sweep
                    and keypoint_error(found[0].keypoints_2d, truth) < MP_TOLERANCE):
                item["landmarks"] = found[0].keypoints_2d
                picked[side].append(item)
            elif (not found and side == "right" and truth.min() > 0.1 * SIZE and truth.max() < 0.9 * SIZE
                  and hand_box(truth) > 0.25 * SIZE):
                picked["hidden"].append(item)
            if len(picked["right"]) >= 3 and len(picked["left"]) >= 3 and picked["hidden"]:
                break
    assert len(picked["right"]) >= 2 and len(picked["left"]) >= 2, {k: [s["index"] for s in v] for k, v in picked.items()}
    return picked


@pytest.fixture(scope="module")
def photo_run(tmp_path_factory, renders, weights):
    """One right-hand render through the CLI with an overlay."""
    folder = tmp_path_factory.mktemp("photo")
    sample = renders["right"][0]
    image = folder / "right_hand.png"
    cv2.imwrite(str(image), bgr(sample["rgb"]))
    out = folder / "out"
    result = estimate(image, "-o", out, "--weights", weights, "--overlay")
    return result, sample, image, out


# --------------------------------------------------------------------------- 1. one photo

def test_photo_to_capture(photo_run):
    result, sample, image, out = photo_run
    assert result.returncode == 0, result.stderr
    assert "right_hand.png: right (mediapipe" in result.stderr
    assert sorted(os.listdir(out)) == ["right_hand.npz", "right_hand_overlay.png"]
    capture = load_capture(str(out / "right_hand.npz"))
    assert capture.fps == 0.0 and tuple(capture.image_size) == (SIZE, SIZE)
    assert os.path.samefile(capture.source_path, image)
    assert [t.side for t in capture.tracks] == ["right"]
    track = capture.tracks[0]
    assert list(track.frame_index) == [0] and track.valid.tolist() == [True]
    assert 0.0 < track.confidence[0] <= 1.0
    truth = sample["keypoints"]
    error = keypoint_error(track.keypoints_2d[0], truth)
    to_landmarks = keypoint_error(track.keypoints_2d[0], sample["landmarks"])
    print(f"render {sample['index']}: keypoints {error:.3f} of the hand box from the truth, "
          f"{to_landmarks:.3f} from MediaPipe's landmarks (which are {keypoint_error(sample['landmarks'], truth):.3f} off)")
    assert error < FIT_TOLERANCE
    assert to_landmarks < 0.12          # the refinement pulls the hand onto its 2D targets, MediaPipe's landmarks
    # the stored 2D keypoints are the stored 3D joints seen through K, in front of the camera
    joints = track.joints_3d[0].astype(np.float64)
    assert (joints[:, 2] > 0.05).all()
    projected = joints @ capture.K.astype(np.float64).T
    np.testing.assert_allclose(projected[:, :2] / projected[:, 2:], track.keypoints_2d[0], atol=0.05)


def test_photo_overlay(photo_run):
    result, sample, image, out = photo_run
    assert result.returncode == 0, result.stderr
    source = cv2.imread(str(image))
    overlay = cv2.imread(str(out / "right_hand_overlay.png"))
    assert overlay is not None and overlay.shape == source.shape
    changed = np.abs(overlay.astype(int) - source.astype(int)).max(-1) > 10
    assert changed.sum() > 500                       # the mesh and skeleton are drawn ...
    truth = sample["keypoints"]
    low, high = truth.min(0), truth.max(0)
    pad = 0.5 * hand_box(truth)
    ys, xs = np.nonzero(changed)
    inside = (xs > low[0] - pad) & (xs < high[0] + pad) & (ys > low[1] - pad) & (ys < high[1] + pad)
    assert inside.mean() > 0.95                      # ... on the hand, not elsewhere


def test_photo_capture_to_blend(photo_run, tmp_path):
    bpy = pytest.importorskip("bpy")
    from blender_addon.convert import convert_capture
    result, _, _, out = photo_run
    assert result.returncode == 0, result.stderr
    blend = str(tmp_path / "right_hand.blend")
    assert convert_capture(str(out / "right_hand.npz"), blend) == blend
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.wm.open_mainfile(filepath=blend)
    arms, meshes = armature_and_mesh()
    assert len(arms) == 1 and len(arms[0].data.bones) == 16
    assert len(meshes) == 1 and meshes[0].parent == arms[0]
    assert len(meshes[0].data.vertices) == len(load_capture(str(out / "right_hand.npz")).tracks[0].rest_vertices)
    scene = bpy.context.scene
    assert (scene.frame_start, scene.frame_end) == (1, 1)
    assert (scene.render.resolution_x, scene.render.resolution_y) == (SIZE, SIZE)


# --------------------------------------------------------------------------- 2. two hands

def test_two_hands_side_by_side(tmp_path, renders, weights):
    # precondition: MediaPipe finds both hands in the pair (the first pair of picked renders for which it does)
    with HandDetector(max_hands=2) as detector:
        pairs = ((r, l) for r in renders["right"] for l in renders["left"])
        found = next(((r, l) for r, l in pairs if sorted(d.side for d in detector.detect(
            np.ascontiguousarray(np.hstack([r["rgb"], l["rgb"]])), search=True)) == ["left", "right"]), None)
    assert found is not None, "MediaPipe finds no pair of the picked renders side by side"
    right, left = found
    rgb = np.ascontiguousarray(np.hstack([right["rgb"], left["rgb"]]))
    cv2.imwrite(str(tmp_path / "both.jpg"), bgr(rgb), [cv2.IMWRITE_JPEG_QUALITY, 95])
    result = estimate(tmp_path / "both.jpg", "-o", tmp_path / "out", "--weights", weights, "--fit-steps", 10)
    assert result.returncode == 0, result.stderr
    capture = load_capture(str(tmp_path / "out" / "both.npz"))
    assert tuple(capture.image_size) == (2 * SIZE, SIZE)
    assert sorted(t.side for t in capture.tracks) == ["left", "right"]
    for track in capture.tracks:
        points = track.keypoints_2d[0]
        if track.side == "right":
            assert points[:, 0].max() < SIZE
            truth = right["keypoints"]
        else:
            assert points[:, 0].min() >= SIZE
            truth = left["keypoints"] + [SIZE, 0]
        assert keypoint_error(points, truth) < FIT_TOLERANCE, track.side


# --------------------------------------------------------------------------------- 3. video

@pytest.fixture(scope="module")
def video_run(tmp_path_factory, renders, weights):
    """A right hand (a render scaled to 300 px) sliding over a grey 640x480 frame, 8 px right and
    2 px down per frame, at 24 fps; frames VIDEO_BLANK show no hand."""
    folder = tmp_path_factory.mktemp("video")
    sample = renders["right"][0]
    side = 300
    small = cv2.resize(bgr(sample["rgb"]), (side, side), interpolation=cv2.INTER_AREA)
    scale = side / SIZE
    path = str(folder / "slide.mp4")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), VIDEO_FPS, (640, 480))
    truth = []
    for i in range(VIDEO_FRAMES):
        frame = np.full((480, 640, 3), 90, np.uint8)
        x, y = 20 + 8 * i, 90 + 2 * i
        if i not in VIDEO_BLANK:
            frame[y:y + side, x:x + side] = small
        writer.write(frame)
        truth.append((sample["keypoints"] + 0.5) * scale - 0.5 + [x, y])
    writer.release()
    out = folder / "out"
    result = estimate(path, "-o", out, "--weights", weights, "--fit-steps", 10)
    return result, out, np.array(truth)


def test_video_to_capture(video_run):
    result, out, truth = video_run
    assert result.returncode == 0, result.stderr
    capture = load_capture(str(out / "slide.npz"))
    assert capture.fps == pytest.approx(VIDEO_FPS) and tuple(capture.image_size) == (640, 480)
    assert len(capture.tracks) == 1
    track = capture.tracks[0]
    assert track.side == "right"
    frames = track.frame_index.tolist()
    assert frames == list(range(frames[0], frames[-1] + 1)) and frames[0] <= 1 and frames[-1] >= VIDEO_FRAMES - 2
    valid = dict(zip(frames, track.valid.tolist()))
    interpolated = dict(zip(frames, track.interpolated.tolist()))
    assert all(valid[f] and interpolated[f] for f in VIDEO_BLANK)       # a short gap: filled, and flagged
    shown = [f for f in range(VIDEO_FRAMES) if f not in VIDEO_BLANK]
    assert not any(interpolated.get(f, False) for f in shown)
    assert np.mean([valid.get(f, False) for f in shown]) >= 0.85
    seen = track.valid & ~track.interpolated
    assert (track.confidence[~seen] == 0).all() and (track.confidence[seen] > 0).all()
    errors = [keypoint_error(track.keypoints_2d[r], truth[f]) for r, f in enumerate(frames) if seen[r]]
    print(f"video keypoint error per valid frame (of the hand box): max {max(errors):.3f}, mean {np.mean(errors):.3f}")
    assert max(errors) < FIT_TOLERANCE
    # the hand follows the slide: 8 px right and 2 px down per frame
    rows = np.nonzero(track.valid)[0]
    first, last = rows[0], rows[-1]
    moved = np.median(track.keypoints_2d[last] - track.keypoints_2d[first], axis=0)
    np.testing.assert_allclose(moved, [8 * (frames[last] - frames[first]), 2 * (frames[last] - frames[first])],
                               atol=0.1 * 8 * (frames[last] - frames[first]))


def test_video_capture_to_blend(video_run, tmp_path):
    bpy = pytest.importorskip("bpy")
    from blender_addon.convert import convert_capture
    result, out, _ = video_run
    assert result.returncode == 0, result.stderr
    capture = load_capture(str(out / "slide.npz"))
    track = capture.tracks[0]
    blend = str(tmp_path / "slide.blend")
    convert_capture(str(out / "slide.npz"), blend)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.wm.open_mainfile(filepath=blend)
    scene = bpy.context.scene
    assert (scene.frame_start, scene.frame_end) == (track.frame_index[0] + 1, track.frame_index[-1] + 1)
    assert scene.render.fps / scene.render.fps_base == pytest.approx(VIDEO_FPS)
    arms, meshes = armature_and_mesh()
    assert len(arms) == 1 and len(arms[0].data.bones) == 16 and len(meshes) == 1
    arm = arms[0]
    slot = arm.animation_data.action_slot
    bag = arm.animation_data.action.layers[0].strips[0].channelbag(slot)
    keyed = (track.frame_index[track.valid] + 1).tolist()            # source frame i -> Blender frame i + 1
    filled = (track.frame_index[track.interpolated] + 1).tolist()
    assert len(keyed) == int(track.valid.sum()) and filled == [f + 1 for f in VIDEO_BLANK]
    for fc in bag.fcurves:
        assert [round(k.co[0]) for k in fc.keyframe_points] == keyed, fc.data_path
        breakdowns = [round(k.co[0]) for k in fc.keyframe_points if k.type == "BREAKDOWN"]
        assert breakdowns == filled, fc.data_path                     # filled frames keyed as breakdowns


# ---------------------------------------------------------------------------- 4. bad inputs

@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, renders):
    folder = tmp_path_factory.mktemp("bad")
    good = bgr(renders["right"][0]["rgb"])
    cv2.imwrite(str(folder / "good.jpg"), good)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "bad.png").write_text("this is a text file, not a picture\n")
    (folder / "notes.txt").write_text("some notes\n")
    (folder / "truncated.jpg").write_bytes((folder / "good.jpg").read_bytes()[:200])
    (folder / "broken.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 4000, np.uint8).tobytes())
    mixed = folder / "mixed"
    mixed.mkdir()
    cv2.imwrite(str(mixed / "hand.png"), good)
    (mixed / "readme.txt").write_text("not an image\n")
    (mixed / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    return folder


def test_bad_inputs_fail_one_by_one(bad_inputs, weights, tmp_path):
    folder = bad_inputs
    bad = ["empty.jpg", "bad.png", "notes.txt", "truncated.jpg", "missing.jpg", "broken.mp4"]
    out = tmp_path / "out"
    result = estimate(*[folder / n for n in bad], folder / "good.jpg", "-o", out, "--weights", weights,
                      "--fit-steps", 10)
    assert result.returncode == 1
    assert sorted(os.listdir(out)) == ["good.npz"]                  # nothing temporary or half-written
    assert len(load_capture(str(out / "good.npz")).tracks) == 1
    lines = error_lines(result.stderr)
    assert len(lines) == len(bad), result.stderr
    named = [next((n for n in bad if line.startswith(f"handcap estimate: error: {folder / n}: ")), line)
             for line in lines]
    # what needs no decoding is reported first, before the engine loads; the rest as the engine meets them
    assert named == ["empty.jpg", "notes.txt", "missing.jpg", "bad.png", "truncated.jpg", "broken.mp4"], lines
    reasons = dict(zip(named, lines))
    assert "empty" in reasons["empty.jpg"] and "no such file" in reasons["missing.jpg"]
    assert "unsupported format .txt" in reasons["notes.txt"]
    assert "not a readable image" in reasons["bad.png"] and "not a readable image" in reasons["truncated.jpg"]
    assert "not a readable video" in reasons["broken.mp4"]
    assert "Traceback" not in result.stderr
    assert f"1 capture file(s) in {out}, 1 hand(s), {len(bad)} input(s) failed" in result.stderr


@pytest.fixture(scope="module")
def json_run(bad_inputs, weights, tmp_path_factory):
    """The mixed folder (a good image, a .txt, a corrupt .png) with --progress json."""
    out = tmp_path_factory.mktemp("json") / "out"
    return estimate(bad_inputs / "mixed", "-o", out, "--weights", weights, "--fit-steps", 10,
                    "--progress", "json"), out


def test_folder_with_bad_files(json_run, bad_inputs):
    result, out = json_run
    assert result.returncode == 1
    assert sorted(os.listdir(out)) == ["hand.npz"]
    assert len(load_capture(str(out / "hand.npz")).tracks) == 1
    lines = error_lines(result.stderr)
    assert lines == [f"handcap estimate: error: {bad_inputs / 'mixed' / 'corrupt.png'}: "
                     "not a readable image (corrupt or not an image)"]
    assert "readme.txt" not in result.stderr + result.stdout       # other files in folders are skipped


def test_progress_json(json_run, bad_inputs):
    result, out = json_run
    events = [json.loads(line) for line in result.stdout.splitlines()]   # every line is JSON
    assert events and all(isinstance(e, dict) and "stage" in e for e in events)
    errors = [e for e in events if e["stage"] == "error"]
    assert len(errors) == 1 and "corrupt.png" in errors[0]["message"]
    assert events[-1]["stage"] == "done" and sum(e["stage"] == "done" for e in events) == 1
    assert events[-1]["outputs"] == [str(out / "hand.npz")] and events[-1]["failed"] == 1
    for e in events[:-1]:
        assert 0 <= e["done"] <= e["total"] or e["stage"] == "error"
    assert [e["done"] for e in events if e["stage"] == "file"] == [0, 1]


def test_image_kinds(tmp_path, renders, weights):
    """Grayscale, RGBA and 16-bit PNGs decode to the same hand an 8-bit RGB PNG gives."""
    sample = renders["right"][0]
    image = bgr(sample["rgb"])
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(tmp_path / "rgb8.png"), image)
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    cv2.imwrite(str(tmp_path / "rgba.png"), cv2.cvtColor(image, cv2.COLOR_BGR2BGRA))
    cv2.imwrite(str(tmp_path / "deep.png"), image.astype(np.uint16) * 257)
    assert cv2.imread(str(tmp_path / "deep.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    assert cv2.imread(str(tmp_path / "rgba.png"), cv2.IMREAD_UNCHANGED).shape[2] == 4
    assert cv2.imread(str(tmp_path / "gray.png"), cv2.IMREAD_UNCHANGED).ndim == 2
    with HandDetector(max_hands=2) as detector:
        gray_hands = len(detector.detect(cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB), search=True))
    names = ["rgb8", "gray", "rgba", "deep"]
    out = tmp_path / "out"
    result = estimate(*[tmp_path / f"{n}.png" for n in names], "-o", out, "--weights", weights, "--fit-steps", 10)
    assert result.returncode == (0 if gray_hands else 3), result.stderr      # 3: read fine, no hand (in the gray one)
    captures = {n: load_capture(str(out / f"{n}.npz")) for n in names}
    assert all(tuple(c.image_size) == (SIZE, SIZE) for c in captures.values())
    assert len(captures["gray"].tracks) == gray_hands
    reference = captures["rgb8"].tracks
    assert [t.side for t in reference] == ["right"]
    for n in ("rgba", "deep"):            # the same pixels: the same result
        assert [t.side for t in captures[n].tracks] == ["right"], n
        np.testing.assert_allclose(captures[n].tracks[0].keypoints_2d, reference[0].keypoints_2d, atol=1e-3)


# ---------------------------------------------------------------------------------- 5. no hand

def test_no_hand(tmp_path, weights):
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (480, 640, 3), np.uint8)
    y, x = np.mgrid[0:480, 0:640]
    gradient = np.stack([x * 255 / 639, y * 255 / 479, (x + y) * 255 / 1118], -1).astype(np.uint8)
    with HandDetector(max_hands=2) as detector:
        assert not detector.detect(noise, search=True) and not detector.detect(gradient, search=True)
    cv2.imwrite(str(tmp_path / "noise.png"), noise)
    cv2.imwrite(str(tmp_path / "gradient.jpg"), gradient)
    out = tmp_path / "out"
    result = estimate(tmp_path / "noise.png", tmp_path / "gradient.jpg", "-o", out, "--weights", weights, "--overlay")
    assert result.returncode == 3, result.stderr                    # read fine, no hand found
    for name in ("noise", "gradient"):
        capture = load_capture(str(out / f"{name}.npz"))
        assert capture.tracks == [] and tuple(capture.image_size) == (640, 480)
    assert "noise.png: no hand found" in result.stderr and "gradient.jpg: no hand found" in result.stderr
    # the overlay of a photo without hands is the photo
    np.testing.assert_array_equal(cv2.imread(str(out / "noise_overlay.png")), noise)


# ------------------------------------------------------------------------------- 7. user boxes

def test_box_instead_of_detection(tmp_path, renders, weights):
    assert renders["hidden"], "no render of a right hand that MediaPipe misses"
    sample = renders["hidden"][0]
    truth = sample["keypoints"]
    low, high = truth.min(0), truth.max(0)
    pad = 0.1 * hand_box(truth)
    x0, y0 = np.maximum(low - pad, 0)
    x1, y1 = np.minimum(high + pad, SIZE - 1)
    cv2.imwrite(str(tmp_path / "hidden.png"), bgr(sample["rgb"]))
    out = tmp_path / "out"
    result = estimate(tmp_path / "hidden.png", "-o", out, "--weights", weights, "--fit-steps", 10,
                      "--box", f"{x0:.1f},{y0:.1f},{x1:.1f},{y1:.1f}")
    assert result.returncode == 0, result.stderr
    assert "hidden.png: right (box " in result.stderr     # the landmark model's side, else --hand's (auto: right)
    capture = load_capture(str(out / "hidden.npz"))
    assert [t.side for t in capture.tracks] == ["right"]
    points = capture.tracks[0].keypoints_2d[0]
    side, centre = max(x1 - x0, y1 - y0), np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    print(f"box side {side:.0f}: keypoints up to {np.abs(points - centre).max() / side:.2f} sides from its centre")
    # the crop is the square 1.25 x the box's longer side around the box's centre, and the 2D
    # targets are an untrained network's heatmap peaks, anywhere in that crop (its weak-perspective
    # camera places the hand anywhere in it too): the keypoints lie in the crop, with 20% slack
    assert (np.abs(points - centre) < 1.2 * 0.625 * side).all()
    # a bad box is a usage error
    bad = estimate(tmp_path / "hidden.png", "-o", out, "--weights", weights, "--box", "10,10,5,20")
    assert bad.returncode == 2 and "argument --box: '10,10,5,20': needs x0 < x1 and y0 < y1" in bad.stderr


# ------------------------------------------------------------------------------------ weights

def test_missing_weights(tmp_path):
    try:
        path = resolve_weights(None, torch.device("cpu"))
    except EngineError as e:
        assert "python -m training.train" in str(e) and "--weights" in str(e)
    else:
        assert os.path.isfile(path)
    with pytest.raises(EngineError, match="no such file"):
        resolve_weights(str(tmp_path / "nope.safetensors"), torch.device("cpu"))
    result = estimate(tmp_path / "x.png", "-o", tmp_path / "out", "--weights", tmp_path / "nope.safetensors")
    assert result.returncode == 2 and "nope.safetensors: no such file" in result.stderr
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------- 8. units

def test_wrist_position_inverts_the_weak_perspective_camera():
    f, principal = 500.0, np.array([320.0, 240.0])
    K = np.array([[f, 0, principal[0]], [0, f, principal[1]], [0, 0, 1]])
    wrist = np.array([0.1, -0.05, 0.6])                  # metres, camera space
    pixel = f * wrist[:2] / wrist[2] + principal          # where the wrist is seen: (403.33, 198.33)
    centre, side = np.array([380.0, 210.0]), 200.0
    s = 2 * f / (wrist[2] * side)                         # the weak-perspective scale at this depth
    t = (pixel - centre) / (side / 2)                     # the wrist's offset from the crop centre, normalised
    got = wrist_position(np.array([[s, *t]]), centre[None], np.array([side]), K)
    np.testing.assert_allclose(got[0], wrist, atol=1e-12)
    # at the crop centre (t = 0) and twice the scale: on the centre's ray, half as far
    got = wrist_position(np.array([[2 * s, 0.0, 0.0]]), centre[None], np.array([side]), K)[0]
    assert got[2] == pytest.approx(2 * f / (2 * s * side)) == pytest.approx(0.3)
    np.testing.assert_allclose(f * got[:2] / got[2] + principal, centre, atol=1e-9)


def _hand(side: str, box) -> HandEstimate:
    z = np.zeros
    return HandEstimate(side=side, score=0.9, box=np.asarray(box, np.float64), pose=z((16, 3)), betas=z(10),
                        transl=z(3), joints_3d=z((21, 3)), keypoints_2d=z((21, 2)))


def test_tracker_keeps_sides_apart():
    tracker = Tracker()
    A, B, C = [100, 100, 200, 200], [180, 100, 280, 200], [120, 100, 220, 200]
    for f in range(6):
        # the left hand moves from B to C, over the right hand's place A, in frame 3 where the
        # right hand is unseen: C overlaps A (IoU 0.67) more than B (0.25), yet stays left
        hands = {3: [_hand("left", C)], 4: [_hand("left", C), _hand("right", A)]}.get(
            f, [_hand("right", A), _hand("left", B if f < 3 else C)])
        tracker.update(f, hands)
    assert sorted(t.side for t in tracker.tracks) == ["left", "right"]
    by_side = {t.side: t for t in tracker.tracks}
    assert sorted(by_side["left"].frames) == list(range(6))
    assert sorted(by_side["right"].frames) == [0, 1, 2, 4, 5]
    for side, track in by_side.items():
        assert all(h.side == side for h in track.frames.values())
    # a second right hand far away starts its own track; the first keeps following its hand
    tracker.update(6, [_hand("right", [500, 300, 600, 400]), _hand("right", [110, 100, 210, 200])])
    rights = [t for t in tracker.tracks if t.side == "right"]
    assert len(rights) == 2 and rights[0].frames[6].box[0] == 110 and list(rights[1].frames) == [6]


@pytest.mark.parametrize("flip", [False, True])
def test_crop_to_source_inverts_crop_matrix(flip):
    rng = np.random.default_rng(1)
    centre, side, size = np.array([311.5, 207.25]), 173.0, 128
    matrix = crop_matrix(centre, side, size, 0.3, flip=flip)
    source = centre + rng.uniform(-side / 2, side / 2, (50, 2))
    crop = source @ matrix[:, :2].T + matrix[:, 2]
    np.testing.assert_allclose(crop_to_source(normalize_keypoints(crop, size), matrix, size), source, atol=1e-9)
    # the crop's centre and edges: normalised (0, 0) is the box centre; x = +1 is the box's
    # right edge, or its left edge when flipped (angle 0)
    matrix = crop_matrix(centre, side, size, 0.0, flip=flip)
    np.testing.assert_allclose(crop_to_source(np.zeros(2), matrix, size), centre, atol=1e-9)
    edge = crop_to_source(np.array([1.0, 0.0]), matrix, size)
    np.testing.assert_allclose(edge, centre + [(-1 if flip else 1) * side / 2, 0], atol=1e-9)


@pytest.mark.parametrize("landmarks, complexity", [("full", 1), ("lite", 0)])
def test_landmark_model_choice_is_mediapipes(landmarks, complexity):
    """--landmarks picks MediaPipe's landmark model: the detector's points are those MediaPipe Hands
    itself gives with that model_complexity (computed here directly), and the two models differ."""
    mp = pytest.importorskip("mediapipe")

    rgb = cv2.cvtColor(cv2.imread(os.path.join(REPO, "core", "assets", "demo_hand.jpg")), cv2.COLOR_BGR2RGB)
    height, width = rgb.shape[:2]
    with HandDetector(max_hands=1, landmarks=landmarks) as detector:
        found = detector.detect(rgb)
    with mp.solutions.hands.Hands(static_image_mode=True, max_num_hands=1, model_complexity=complexity,
                                  min_detection_confidence=0.3) as hands:
        result = hands.process(rgb)
    direct = np.array([(p.x * width, p.y * height) for p in result.multi_hand_landmarks[0].landmark])
    assert len(found) == 1 and np.abs(found[0].keypoints_2d - direct).max() < 1.0
    with mp.solutions.hands.Hands(static_image_mode=True, max_num_hands=1, model_complexity=1 - complexity,
                                  min_detection_confidence=0.3) as hands:
        other = hands.process(rgb).multi_hand_landmarks[0].landmark
    other = np.array([(p.x * width, p.y * height) for p in other])
    assert np.abs(found[0].keypoints_2d - other).max() > 1.0


def test_unknown_landmark_model_is_a_clear_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "core", "estimate", "x.png", "-o", str(tmp_path), "--landmarks", "huge"],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2 and "--landmarks" in result.stderr and "lite" in result.stderr


def test_tracker_drops_a_side_flip_that_does_not_last():
    """One hand, its side misread in frame 2 only: one track, frame 2 missing; a flip that lasts
    FLIP_CONFIRM frames is a hand of its own."""
    from core.engine.tracking import FLIP_CONFIRM
    tracker = Tracker()
    box = [100, 100, 200, 200]
    for f in range(6):
        tracker.update(f, [_hand("left" if f == 2 else "right", box)])
    assert [t.side for t in tracker.tracks] == ["right"]
    assert sorted(tracker.tracks[0].frames) == [0, 1, 3, 4, 5]
    tracker = Tracker()
    for f in range(2 + FLIP_CONFIRM):
        tracker.update(f, [_hand("left" if f >= 2 else "right", box)])
    assert sorted(t.side for t in tracker.tracks) == ["left", "right"]
    assert sorted(next(t for t in tracker.tracks if t.side == "left").frames) == list(range(2, 2 + FLIP_CONFIRM))
