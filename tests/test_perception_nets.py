"""handcap's perception networks (core/perception) against MediaPipe 0.10.21's own TFLite runtime.

The reference is the original .tflite model inside the mediapipe wheel, run by MediaPipe's
InferenceCalculator (core/perception/reference.py); the torch side loads the shipped
safetensors. Raw outputs must agree within 1e-3 (pixel outputs divided by the input size).
Skipped when mediapipe is not installed.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from core.perception import (HandLandmarkNet, HandRecropNet, PalmDetector, PoseDetector, PoseLandmarkNet,
                             load_hand_landmarks, load_hand_recrop, load_palm_detector, load_pose_detector,
                             load_pose_landmarks)
from core.perception.layers import SameConv2d, pointwise, same_padding

from .conftest import REAL_IMAGES

TOLERANCE = 1e-3
FREIHAND_CROP = os.path.join(REAL_IMAGES, "freihand_eval", "2299.jpg")       # 224 px hand crop
WILD_PHOTO = os.path.join(REAL_IMAGES, "in_the_wild", "wild_1.jpg")


def _logit_error(logits: np.ndarray, reference: np.ndarray) -> float:
    """Largest |difference| / max(1, |logit|): large negative logits carry float32 rounding."""
    return float((np.abs(logits - reference) / np.maximum(1.0, np.abs(reference))).max())


def _images(size: int, real_photo: str, count: int = 9) -> np.ndarray:
    """(N, size, size, 3) uint8 RGB: random images, plus the real photo squashed to size (if present).
    N > CPU_CHUNK (8), so the batch runs in slices on the CPU."""
    images = list(np.random.default_rng(size).integers(0, 256, (count, size, size, 3), dtype=np.uint8))
    if os.path.isfile(real_photo):
        import cv2
        images.append(cv2.resize(cv2.imread(real_photo), (size, size), interpolation=cv2.INTER_AREA)[:, :, ::-1])
    return np.ascontiguousarray(np.stack(images))


def _reference(relative: str, size: int, num_outputs: int, images: np.ndarray,
               float_range=(0.0, 1.0)) -> list[np.ndarray]:
    pytest.importorskip("mediapipe")
    from core.perception.reference import MediaPipeModel
    model = MediaPipeModel(relative, size, num_outputs, float_range=float_range)
    try:
        return model(images)
    finally:
        model.close()


def _tensor(images: np.ndarray, float_range=(0.0, 1.0)) -> torch.Tensor:
    lo, hi = float_range
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() * ((hi - lo) / 255.0) + lo


@pytest.mark.parametrize("variant", ["full", "lite"])
def test_palm_detector_matches_mediapipe(variant):
    images = _images(192, WILD_PHOTO)
    boxes_ref, scores_ref = _reference(f"palm_detection/palm_detection_{variant}.tflite", 192, 2, images)
    with torch.no_grad():
        boxes, scores = load_palm_detector(variant)(_tensor(images))
    assert boxes.shape == (len(images), 2016, 18) and scores.shape == (len(images), 2016)
    assert np.abs(boxes.reshape(len(images), -1).numpy() - boxes_ref).max() / 192 < TOLERANCE
    assert _logit_error(scores.numpy(), scores_ref) < TOLERANCE
    if os.path.isfile(WILD_PHOTO):        # the photo has hands: some anchor must be confident
        assert scores_ref[-1].max() > 0


def test_pose_detector_matches_mediapipe():
    images = _images(224, WILD_PHOTO)
    boxes_ref, scores_ref = _reference("pose_detection/pose_detection.tflite", 224, 2, images, (-1.0, 1.0))
    with torch.no_grad():
        boxes, scores = load_pose_detector()(_tensor(images, PoseDetector.INPUT_RANGE))
    assert boxes.shape == (len(images), 2254, 12) and scores.shape == (len(images), 2254)
    assert np.abs(boxes.reshape(len(images), -1).numpy() - boxes_ref).max() / 224 < TOLERANCE
    assert _logit_error(scores.numpy(), scores_ref) < TOLERANCE
    if os.path.isfile(WILD_PHOTO):        # people in the photo: some anchor must be confident
        assert scores_ref[-1].max() > 0


@pytest.mark.parametrize("variant", ["full", "lite"])
def test_hand_landmarks_match_mediapipe(variant):
    images = _images(224, FREIHAND_CROP)
    landmarks_ref, presence_ref, handedness_ref, world_ref = _reference(
        f"hand_landmark/hand_landmark_{variant}.tflite", 224, 4, images)
    with torch.no_grad():
        out = load_hand_landmarks(variant)(_tensor(images))
    n = len(images)
    assert out.landmarks.shape == (n, 21, 3) and out.world.shape == (n, 21, 3)
    assert out.presence.shape == (n,) and out.handedness.shape == (n,)
    assert np.abs(out.landmarks.reshape(n, -1).numpy() - landmarks_ref).max() / 224 < TOLERANCE
    assert np.abs(out.presence.numpy() - presence_ref[:, 0]).max() < TOLERANCE
    assert np.abs(out.handedness.numpy() - handedness_ref[:, 0]).max() < TOLERANCE
    assert np.abs(out.world.reshape(n, -1).numpy() - world_ref).max() < TOLERANCE      # metres
    if os.path.isfile(FREIHAND_CROP):     # a real hand crop: MediaPipe itself sees a hand
        assert presence_ref[-1, 0] > 0.5


def test_pose_landmarks_match_mediapipe():
    images = _images(256, WILD_PHOTO, count=5)
    landmarks_ref, flag_ref, mask_ref, heatmap_ref, world_ref = _reference(
        "pose_landmark/pose_landmark_full.tflite", 256, 5, images)
    with torch.no_grad():
        out = load_pose_landmarks()(_tensor(images))
        masked = load_pose_landmarks()(_tensor(images[:2]), segmentation=True)
    n = len(images)
    assert out.landmarks.shape == (n, 39, 5) and out.world.shape == (n, 39, 3) and out.flag.shape == (n,)
    assert out.heatmap.shape == (n, 64, 64, 39) and out.segmentation is None
    landmarks, reference = out.landmarks.numpy(), landmarks_ref.reshape(n, 39, 5)
    assert np.abs(landmarks[..., :3] - reference[..., :3]).max() / 256 < TOLERANCE
    assert _logit_error(landmarks[..., 3:], reference[..., 3:]) < TOLERANCE          # visibility, presence
    assert np.abs(out.flag.numpy() - flag_ref[:, 0]).max() < TOLERANCE
    assert _logit_error(out.heatmap.reshape(n, -1).numpy(), heatmap_ref) < TOLERANCE
    assert np.abs(out.world.reshape(n, -1).numpy() - world_ref).max() < TOLERANCE     # metres
    # the person mask (unused by handcap, computed on request): probabilities within 5e-3 (see convert.py)
    probability = torch.sigmoid(masked.segmentation.reshape(2, -1)).numpy()
    assert np.abs(probability - 1 / (1 + np.exp(-np.clip(mask_ref[:2], -80, 80)))).max() < 5e-3
    if os.path.isfile(WILD_PHOTO):        # people in the photo: MediaPipe itself sees a person
        assert flag_ref[-1, 0] > 0.5


def test_hand_recrop_matches_mediapipe():
    images = _images(256, FREIHAND_CROP)
    (points_ref,) = _reference("holistic_landmark/hand_recrop.tflite", 256, 1, images)
    with torch.no_grad():
        points = load_hand_recrop()(_tensor(images))
    assert points.shape == (len(images), 2, 2)
    assert np.abs(points.reshape(len(images), -1).numpy() - points_ref).max() / 256 < TOLERANCE


def test_input_ranges_and_shape_errors():
    assert PalmDetector.INPUT_RANGE == (0.0, 1.0) and HandLandmarkNet.INPUT_RANGE == (0.0, 1.0)
    assert PoseDetector.INPUT_RANGE == (-1.0, 1.0)
    assert PoseLandmarkNet.INPUT_RANGE == (0.0, 1.0) and HandRecropNet.INPUT_RANGE == (0.0, 1.0)
    with pytest.raises(ValueError):
        PoseLandmarkNet()(torch.zeros(1, 3, 224, 224))
    with pytest.raises(ValueError):
        HandRecropNet()(torch.zeros(1, 3, 224, 224))
    with pytest.raises(ValueError):
        PalmDetector("lite")(torch.zeros(1, 3, 224, 224))
    with pytest.raises(ValueError):
        HandLandmarkNet("lite")(torch.zeros(1, 224, 224, 3))
    with pytest.raises(ValueError):
        HandLandmarkNet("medium")


def test_landmark_features_are_the_trunk_maps():
    net = load_hand_landmarks("lite")
    image = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out, maps = net(image, features=True)
        plain = net(image)
    assert {k: tuple(v.shape) for k, v in maps.items()} == {
        "s2_c16": (2, 16, 112, 112), "s4_c16": (2, 16, 56, 56), "s8_c24": (2, 24, 28, 28),
        "s16_c64": (2, 64, 14, 14), "s32_c112": (2, 112, 7, 7), "head_c672": (2, 672, 7, 7)}
    torch.testing.assert_close(out.landmarks, plain.landmarks)
    # the head map is what the outputs are read from: its spatial mean through the linear layer
    torch.testing.assert_close(net.world(maps["head_c672"].mean((2, 3))).view(2, 21, 3), out.world)


def test_converter_refuses_a_graph_that_does_not_fit():
    pytest.importorskip("tflite")
    pytest.importorskip("mediapipe")
    from core.perception.convert import ConversionError, map_weights
    from core.perception.reference import mediapipe_model_path
    from core.perception.tflite_graph import read_tflite
    graph = read_tflite(mediapipe_model_path("palm_detection/palm_detection_full.tflite"))
    assert len(map_weights(graph, PalmDetector("full"))) == len(PalmDetector("full").state_dict())
    with pytest.raises(ConversionError):
        map_weights(graph, PalmDetector("lite"))
    with pytest.raises(ConversionError):        # same layer count and shapes, different padding
        map_weights(read_tflite(mediapipe_model_path("hand_landmark/hand_landmark_full.tflite")),
                    _with_symmetric_stem(HandLandmarkNet("full")))


def _with_symmetric_stem(net: HandLandmarkNet) -> HandLandmarkNet:
    net.stem = torch.nn.Conv2d(3, 24, 3, 2, 1)
    return net


@pytest.mark.parametrize("size", [16, 15, 7])
@pytest.mark.parametrize("kernel,stride,groups", [(3, 2, 1), (5, 2, 4), (3, 1, 4), (5, 1, 1)])
def test_same_conv_is_tensorflows_same_padding(size, kernel, stride, groups):
    """Against the definition: pad (before, after) = SAME's split of the total, then a VALID convolution."""
    torch.manual_seed(size)
    conv = SameConv2d(4, 8, kernel, stride, groups).requires_grad_(False)
    x = torch.rand(2, 4, size, size)
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    assert same_padding(size, kernel, stride) == (total // 2, total - total // 2)
    padded = torch.nn.functional.pad(x, (total // 2, total - total // 2) * 2)
    expected = torch.nn.functional.conv2d(padded, conv.weight, conv.bias, stride, 0, 1, groups)
    for layout in (torch.contiguous_format, torch.channels_last):
        torch.testing.assert_close(conv(x.contiguous(memory_format=layout)), expected, rtol=1e-5, atol=1e-5)


def test_pointwise_matches_a_1x1_convolution():
    layer = pointwise(6, 5).requires_grad_(False)
    x = torch.rand(3, 6, 4, 7)
    expected = torch.nn.functional.conv2d(x, layer.weight, layer.bias)
    for layout in (torch.contiguous_format, torch.channels_last):
        torch.testing.assert_close(layer(x.contiguous(memory_format=layout)), expected, rtol=1e-5, atol=1e-5)
