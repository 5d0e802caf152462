"""One landmark pass per tracked hand: mirrored hand regions (core.perception) and the engine's reuse
of the tracker's pass as the landmark trunk's outputs (core.engine.pipeline, core.networks.landmark_trunk).

Geometry is checked against core.crops' independent crop maps and a bright dot; the reuse against a
fresh trunk pass on the same crop (the shipped weights)."""

import dataclasses
import os

import cv2
import numpy as np
import pytest
import torch

from core.crops import crop_matrix, cut_crop
from core.perception.hand_landmarker import HandLandmarker
from core.perception.hand_landmarks import LandmarkOutput
from core.perception.hand_tracker import HandTracker
from core.perception.regions import Region, region_from_landmarks
from core.perception.warp import cut_regions

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(REPO, "core", "assets", "demo_hand.jpg")


def _gradient_image(height: int = 480, width: int = 640) -> np.ndarray:
    """(H, W, 3) uint8 with smooth but position-revealing content (no two places alike)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    return np.stack([(x * 0.37) % 256, (y * 0.53) % 256, ((x + 2 * y) * 0.21) % 256], -1).astype(np.uint8)


@pytest.mark.parametrize("mirrored", [False, True])
def test_a_regions_crop_is_core_crops_crop_turned_by_its_rotation(mirrored):
    """The engine cuts the trunk's crop as a region and describes it to the network with core.crops'
    angle: -rotation, or +rotation when mirrored (flip first, then turn)."""
    rgb = _gradient_image()
    region = Region(300.3, 220.7, 150.0, 150.0, 0.4, mirrored)
    ours = cut_regions(rgb, [region], 224)[0][0].astype(np.float64)
    angle = region.rotation if mirrored else -region.rotation
    theirs = cut_crop(rgb, crop_matrix(np.array([region.cx, region.cy]), region.width, 224, angle, flip=mirrored), 224)
    assert np.abs(ours - theirs)[8:-8, 8:-8].mean() < 2.0          # sampling differs by float32 rounding only
    wrong = cut_crop(rgb, crop_matrix(np.array([region.cx, region.cy]), region.width, 224, -angle, flip=mirrored), 224)
    assert np.abs(ours - wrong)[8:-8, 8:-8].mean() > 10.0


class DotNet(torch.nn.Module):
    """A landmark 'model' that answers where the brightest red pixel of its input is: every landmark
    there (crop pixels, corner convention), world = its offset from the centre in mm, and handedness
    0.9 when it lies in the input's left half: a model that mirrors exactly."""

    INPUT_RANGE = (0.0, 1.0)
    variant = "dot"

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, image, features=False):
        b = image.shape[0]
        flat = image[:, 0].reshape(b, -1).argmax(1)
        y, x = (flat // 224).float(), (flat % 224).float()
        landmarks = torch.stack([x + 0.5, y + 0.5, torch.zeros(b)], -1)[:, None].expand(b, 21, 3)
        world = torch.stack([(x + 0.5 - 112) / 1000, (y + 0.5 - 112) / 1000, torch.zeros(b)], -1)[:, None].expand(b, 21, 3)
        handedness = torch.where(x < 112, 0.9, 0.1)
        out = LandmarkOutput(landmarks, torch.full((b,), 0.99), handedness, world)
        return (out, {"head_c2": torch.ones(b, 2, 7, 7)}) if features else out


def test_a_mirrored_region_gives_the_same_hand():
    rgb = np.zeros((300, 400, 3), np.uint8)
    dot = np.array([231.0, 120.0])
    cv2.circle(rgb, (int(dot[0]), int(dot[1])), 2, (255, 0, 0), -1)
    landmarker = HandLandmarker(DotNet())
    region = Region(210.0, 140.0, 120.0, 120.0, 0.5)
    plain, mirrored = landmarker.look(rgb, [region, dataclasses.replace(region, mirrored=True)])
    assert mirrored.seen.crop[:, ::-1].tolist() == plain.seen.crop.tolist()
    pixel = region.width / 224
    for hand in (plain, mirrored):
        assert np.abs(hand.landmarks[0, :2] - dot).max() < 2.5 * pixel + 1.0
    np.testing.assert_allclose(mirrored.world, plain.world, atol=2e-3)     # 1 mm per crop pixel
    assert mirrored.right == pytest.approx(plain.right) and plain.seen.handedness != mirrored.seen.handedness
    assert mirrored.side == plain.side


# ----------------------------------------------------------------------- the shipped networks

@pytest.fixture(scope="module")
def clip():
    """Three 640x480 frames of the demo hand (a left hand) moving over a gradient, and the same mirrored
    (a right hand)."""
    hand = cv2.cvtColor(cv2.resize(cv2.imread(DEMO), (280, 280)), cv2.COLOR_BGR2RGB)
    background = np.tile(np.linspace(90, 170, 640, dtype=np.uint8)[None, :, None], (480, 1, 3))
    frames = []
    for x, y in ((120, 100), (128, 104), (136, 107)):
        frame = background.copy()
        frame[y:y + 280, x:x + 280] = hand
        frames.append(frame)
    return frames, [np.ascontiguousarray(f[:, ::-1]) for f in frames]


@pytest.fixture(scope="module")
def engine():
    from core.engine.pipeline import Engine, EngineOptions
    engine = Engine(EngineOptions(device="cpu"))
    if engine.network.trunk_variant is None:
        pytest.skip("the default network is not on the landmark trunk")
    return engine


def _tracked(frames):
    from core.engine.detect import HandDetector
    detector = HandDetector(max_hands=1, video=True)
    return [detector.detect(rgb) for rgb in frames]


@pytest.mark.parametrize("mirror_clip", [False, True])
def test_the_engine_reuses_the_trackers_pass_and_it_equals_a_fresh_one(engine, clip, mirror_clip):
    frames = clip[1] if mirror_clip else clip[0]
    found = _tracked(frames)
    assert [len(f) for f in found] == [1, 1, 1]
    first, later = found[0][0], found[2][0]
    assert first.seen is None                                     # found by the palm detector: no reuse
    assert later.seen is not None and later.tracked_region.mirrored == (later.side == "left")
    assert later.side == ("right" if mirror_clip else "left")
    # the tracker's crop is the trunk's crop of this hand, cut again from the frame
    again = cut_regions(frames[2], [later.tracked_region], 224)[0][0]
    assert np.array_equal(again, later.seen.crop)
    # its outputs equal the trunk run on that crop
    trunk = engine.network.model.trunk
    with torch.inference_mode():
        fresh = trunk(torch.from_numpy(later.seen.crop[None]).permute(0, 3, 1, 2).float().div(255.0)
                      .contiguous(memory_format=torch.channels_last))
    reused = trunk.outputs_from_pass(later.seen)
    for key in fresh:
        torch.testing.assert_close(reused[key], fresh[key].float(), atol=1e-5, rtol=1e-5)


def test_tracked_hands_skip_the_trunk_and_the_network_answers_as_with_a_fresh_pass(engine, clip, monkeypatch):
    from core.capture import default_intrinsics
    frames = clip[0]
    found = _tracked(frames)
    K = default_intrinsics(640, 480)
    calls = []
    trunk = engine.network.model.trunk
    forward = trunk.forward
    monkeypatch.setattr(trunk, "forward", lambda images: calls.append(len(images)) or forward(images))
    hands = engine.estimate_frames(frames[1:], K, found[1:])
    assert calls == [] and [len(h) for h in hands] == [1, 1]     # every hand tracked: no trunk pass
    items = [(f, d) for f, ds in enumerate(found[1:]) for d in ds]
    crops, *_, angles, seen = engine._crops(frames[1:], items, K)
    assert all(s is not None for s in seen)
    reused = engine.network.predict(crops, angles=angles, seen=seen)
    fresh = engine.network.predict(crops, angles=angles)
    assert calls == [2]
    for key in fresh:
        np.testing.assert_allclose(reused[key], fresh[key], atol=1e-4, err_msg=key)


def test_a_lite_landmark_pass_is_not_reused_by_the_full_trunk(engine, clip):
    from core.capture import default_intrinsics
    from core.engine.detect import HandDetector
    detector = HandDetector(max_hands=1, video=True, landmarks="lite")
    found = [detector.detect(rgb) for rgb in clip[0][:2]]
    assert found[1][0].seen.model == "lite"
    crops, *_, seen = engine._crops(clip[0][1:2], [(0, found[1][0])], default_intrinsics(640, 480))
    assert seen == [None]
    region = region_from_landmarks(found[1][0].keypoints_2d, mirrored=True)
    assert np.array_equal(crops[0], cut_regions(clip[0][1], [region], 224)[0][0])
