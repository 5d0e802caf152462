"""handcap's hand pipeline (core.perception) against MediaPipe Hands 0.10.21 on the same images: the same
hands (count, side, box IoU > 0.5), landmarks within 0.5 px on average in the 224 px crop (the photo's
pixel error x 224 / region side), world landmarks within 1 mm on average. Photos (../shared/real_images,
all of them), synthetic renders, and a tracked clip. Skipped where mediapipe is not installed
(a test/maintainer extra: CI installs it).
"""

import glob
import os

import cv2
import numpy as np
import pytest

mp = pytest.importorskip("mediapipe")

from core.engine.detect import _detection_view          # noqa: E402  (the engine's view of a photo)
from core.perception.hand_tracker import HandTracker     # noqa: E402

from .conftest import REAL_IMAGES                        # noqa: E402

CROP_PX, WORLD_MM, BOX_IOU = 0.5, 1.0, 0.5


def mediapipe_hands(hands, rgb: np.ndarray) -> list[dict]:
    """MediaPipe Hands' result for one image: landmarks (21, 2) pixels, world (21, 3) m, the person's side."""
    result = hands.process(rgb)
    height, width = rgb.shape[:2]
    found = []
    for lm, world, side in zip(result.multi_hand_landmarks or [], result.multi_hand_world_landmarks or [],
                               result.multi_handedness or []):
        found.append({"points": np.array([(p.x * width, p.y * height) for p in lm.landmark]),
                      "world": np.array([(p.x, p.y, p.z) for p in world.landmark]),
                      "side": "right" if side.classification[0].label == "Left" else "left"})
    return found


def _box(points: np.ndarray) -> np.ndarray:
    return np.concatenate([points.min(0), points.max(0)])


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union


def compare(reference: list[dict], ours: list, name: str) -> list[str]:
    """Problems (empty when they agree) of our hands against MediaPipe's on one image; prints a summary."""
    problems = []
    if len(reference) != len(ours):
        return [f"{name}: MediaPipe found {len(reference)} hands, handcap {len(ours)}"]
    line = f"{name}: {len(ours)} hands"
    for r, h in zip(reference, ours):
        crop_px = float(np.linalg.norm(h.landmarks[:, :2] - r["points"], axis=1).mean()) * 224 / h.region.width
        world_mm = 1000 * float(np.linalg.norm(h.world - r["world"], axis=1).mean())
        iou = _iou(_box(h.landmarks[:, :2]), _box(r["points"]))
        line += f" | {h.side}: {crop_px:.3f} crop px, {world_mm:.3f} mm, IoU {iou:.3f}"
        if h.side != r["side"] or iou <= BOX_IOU or crop_px >= CROP_PX or world_mm >= WORLD_MM:
            problems.append(f"{name}: {r['side']} vs {h.side}, IoU {iou:.3f}, {crop_px:.3f} crop px, {world_mm:.3f} mm")
    print(line)
    return problems


@pytest.fixture(scope="module")
def photo_pair():
    with mp.solutions.hands.Hands(static_image_mode=True, max_num_hands=2, model_complexity=1,
                                  min_detection_confidence=0.3) as hands:
        yield hands, HandTracker.load(max_hands=2, min_confidence=0.3, video=False, variant="full")


@pytest.mark.skipif(not os.path.isdir(REAL_IMAGES), reason="../shared/real_images is not here")
def test_same_hands_as_mediapipe_on_every_real_photo(photo_pair):
    hands, tracker = photo_pair
    paths = sorted(glob.glob(os.path.join(REAL_IMAGES, "**", "*.jpg"), recursive=True))
    assert paths
    problems, found = [], 0
    for path in paths:
        rgb, _ = _detection_view(cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB))
        reference = mediapipe_hands(hands, rgb)
        found += len(reference)
        problems += compare(reference, tracker(rgb), os.path.relpath(path, REAL_IMAGES))
    assert found >= 10                       # the photos do show hands MediaPipe finds
    assert not problems, "\n".join(problems)


def test_same_hands_as_mediapipe_on_synthetic_renders(photo_pair):
    from training.synth import SyntheticHands
    hands, tracker = photo_pair
    samples = SyntheticHands(count=8, seed=11, split="heldout", size=256).render(range(8))
    problems, found = [], 0
    for i, rendered in enumerate(samples):
        rgb = np.ascontiguousarray(rendered.sample["image"].permute(1, 2, 0).numpy())
        reference = mediapipe_hands(hands, rgb)
        found += len(reference)
        problems += compare(reference, tracker(rgb), f"render {i}")
    assert found >= 3
    assert not problems, "\n".join(problems)


def _clip(frames: int = 16) -> list[np.ndarray]:
    """640x480 frames: a FreiHAND photo (one right hand) scaled to 300 px, gliding over a grey gradient."""
    path = os.path.join(REAL_IMAGES, "freihand_eval", "538.jpg")
    hand = cv2.resize(cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB), (300, 300))
    background = np.tile(np.linspace(70, 180, 640, dtype=np.uint8)[None, :, None], (480, 1, 3))
    clip = []
    for i in range(frames):
        frame = background.copy()
        x, y = 40 + 17 * i, 80 + int(30 * np.sin(i / 3))
        frame[y:y + 300, x:x + 300] = hand
        clip.append(frame)
    return clip


@pytest.mark.skipif(not os.path.isdir(REAL_IMAGES), reason="../shared/real_images is not here")
@pytest.mark.parametrize("max_hands", [1, 2])
def test_same_hands_as_mediapipe_when_tracking_a_clip(max_hands):
    tracker = HandTracker.load(max_hands=max_hands, min_confidence=0.3, video=True, variant="full", palm_every=1)
    problems, found = [], 0
    with mp.solutions.hands.Hands(static_image_mode=False, max_num_hands=max_hands, model_complexity=1,
                                  min_detection_confidence=0.3, min_tracking_confidence=0.5) as hands:
        for i, rgb in enumerate(_clip()):
            reference = mediapipe_hands(hands, rgb)
            found += len(reference)
            problems += compare(reference, tracker(rgb), f"frame {i}")
    assert found >= 12
    assert not problems, "\n".join(problems)
