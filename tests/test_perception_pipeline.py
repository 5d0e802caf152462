"""The hand pipeline around the networks (core.perception): anchors, decoding, weighted NMS, regions,
crops and tracking, each against a hand computation or an independent measurement (no weights needed)."""

import collections
import math

import numpy as np
import pytest
import torch

from core.perception.hand_landmarker import HandLandmarker
from core.perception.hand_tracker import HandTracker
from core.perception.palm_finder import PalmFinder
from core.perception.regions import Region, merge_regions, region_from_landmarks, region_from_palm, region_iou
from core.perception.ssd import PalmBoxes, decode_palms, palm_anchor_centres, weighted_nms
from core.perception.warp import cut_regions, pad_to_square, remove_letterbox


def test_palm_anchors_are_mediapipes_grid():
    anchors = palm_anchor_centres()
    assert anchors.shape == (2016, 2)
    # stride 8: 24 x 24 cells, 2 anchors each, row by row
    np.testing.assert_allclose(anchors[0], anchors[1])
    np.testing.assert_allclose(anchors[0], [0.5 / 24, 0.5 / 24])
    np.testing.assert_allclose(anchors[2], [1.5 / 24, 0.5 / 24])
    np.testing.assert_allclose(anchors[2 * 24], [0.5 / 24, 1.5 / 24])
    # the three stride-16 layers share 12 x 12 cells, 6 anchors each
    np.testing.assert_allclose(anchors[1152:1158], [[0.5 / 12, 0.5 / 12]] * 6)
    np.testing.assert_allclose(anchors[-1], [11.5 / 12, 11.5 / 12])


def test_decode_palms_by_hand():
    anchors = torch.from_numpy(palm_anchor_centres())
    raw = torch.zeros(1, 2016, 18)
    scores = torch.full((1, 2016), -10.0)
    k = 1152 + 6 * 13                               # stride-16 cell (1, 1): centre (1.5 / 12, 1.5 / 12)
    raw[0, k, :4] = torch.tensor([19.2, -9.6, 38.4, 19.2])       # x, y, w, h in 192 px input pixels
    raw[0, k, 4:6] = torch.tensor([9.6, 0.0])                    # keypoint 0
    scores[0, k] = 500.0                                         # clipped to 100 before the sigmoid
    scores[0, 7] = -0.5                                          # 0.378: under the threshold
    (palms,) = decode_palms(raw, scores, anchors, min_score=0.5)
    cx, cy = 1.5 / 12 + 0.1, 1.5 / 12 - 0.05
    np.testing.assert_allclose(palms.boxes, [[cx - 0.1, cy - 0.05, cx + 0.1, cy + 0.05]], atol=1e-6)
    np.testing.assert_allclose(palms.keypoints[0, 0], [1.5 / 12 + 0.05, 1.5 / 12], atol=1e-6)
    np.testing.assert_allclose(palms.scores, [1.0], atol=1e-6)


def test_weighted_nms_merges_overlapping_boxes_by_score():
    boxes = np.array([[0.0, 0.0, 1.0, 1.0], [0.1, 0.0, 1.1, 1.0], [3.0, 3.0, 4.0, 4.0], [0.0, 0.5, 1.0, 1.5]])
    keypoints = np.arange(4 * 14, dtype=np.float64).reshape(4, 7, 2)
    scores = np.array([0.9, 0.6, 0.8, 0.7])        # box 3 overlaps box 0 by IoU 1/3 (> 0.3), box 1 by 0.9 / 2.3
    out = weighted_nms(PalmBoxes(boxes, keypoints, scores))
    members = [0, 3, 1]                              # box 0's group, best first
    w = scores[members] / scores[members].sum()
    np.testing.assert_allclose(out.boxes[0], (boxes[members] * w[:, None]).sum(0))
    np.testing.assert_allclose(out.keypoints[0], (keypoints[members] * w[:, None, None]).sum(0))
    np.testing.assert_allclose(out.scores, [0.9, 0.8])
    np.testing.assert_allclose(out.boxes[1], boxes[2])


def test_region_from_palm_upright_and_turned():
    box = np.array([50.0, 110.0, 150.0, 190.0])      # 100 x 80 around (100, 150)
    up = np.array([[100.0, 200.0], [0, 0], [100.0, 100.0]] + [[0, 0]] * 4)   # wrist below the middle finger
    region = region_from_palm(box, up)
    assert region.rotation == pytest.approx(0.0)
    assert (region.cx, region.cy) == pytest.approx((100.0, 150.0 - 0.5 * 80))
    assert region.width == region.height == pytest.approx(2.6 * 100)
    right = np.array([[50.0, 150.0], [0, 0], [150.0, 150.0]] + [[0, 0]] * 4)  # the hand points right
    region = region_from_palm(box, right)
    assert region.rotation == pytest.approx(math.pi / 2)
    assert (region.cx, region.cy) == pytest.approx((100.0 + 0.5 * 80, 150.0))   # moved towards the fingers


def _upright_hand(cx=300.0, cy=300.0, scale=40.0, angle=0.0):
    """(21, 2) landmarks of a flat open hand pointing up (y down), turned by ``angle`` (radians,
    clockwise in the image) about the wrist."""
    fingers = [(-1.2, 0.6), (-0.5, 1.0), (0.0, 1.05), (0.5, 1.0), (1.0, 0.85)]
    points = [(0.0, 0.0)]
    for x, length in fingers:
        for j in range(1, 5):
            points.append((x * (0.4 + 0.15 * j), -(0.5 + length * 0.5 * j)))
    p = np.array(points) * scale
    c, s = math.cos(angle), math.sin(angle)
    return p @ np.array([[c, s], [-s, c]]) + [cx, cy]


@pytest.mark.parametrize("angle", [0.0, 0.7, -2.0, math.pi])
def test_region_from_landmarks_turns_with_the_hand(angle):
    points = _upright_hand(angle=angle)
    region = region_from_landmarks(points)
    upright = region_from_landmarks(_upright_hand())
    assert math.cos(region.rotation - angle) == pytest.approx(1.0, abs=1e-9)
    assert region.width == pytest.approx(upright.width) and region.width == region.height
    # the region is the partial landmarks' extent along its axes, doubled, moved 0.1 of it towards the fingers
    c, s = math.cos(angle), math.sin(angle)
    part = points[[0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18]]
    local = (part - points[0]) @ np.array([[c, -s], [s, c]])          # into the hand's upright frame
    extent = local.max(0) - local.min(0)
    assert region.width == pytest.approx(2 * extent.max())
    centre_local = (local.max(0) + local.min(0)) / 2 + [0, -0.1 * extent[1]]
    centre = points[0] + centre_local @ np.array([[c, s], [-s, c]])
    assert (region.cx, region.cy) == pytest.approx(tuple(centre))


@pytest.mark.parametrize("rotation", [0.0, 0.4, math.pi / 2, -2.5])
def test_crop_and_back_to_the_image(rotation):
    """A dot in the photo is found in the crop where ``Region.to_image`` says it is; the direction the
    region's rotation turns up in the crop is the image direction (sin r, -cos r)."""
    rgb = np.zeros((360, 480, 3), np.uint8)
    region = Region(250.0, 170.0, 150.0, 150.0, rotation)
    dot = np.array([250.0, 170.0]) + 40 * np.array([math.sin(rotation), -math.cos(rotation)])
    x, y = np.round(dot).astype(int)
    rgb[y - 1:y + 2, x - 1:x + 2] = 255
    dot = np.array([x, y], np.float64)
    crops, paddings = cut_regions(rgb, [region], 224)
    weight = crops[0, :, :, 0].astype(np.float64)
    ys, xs = np.mgrid[:224, :224]
    found = np.array([(xs * weight).sum(), (ys * weight).sum()]) / weight.sum() + 0.5   # pixel centres -> fractions
    np.testing.assert_allclose(region.to_image(found / 224), dot, atol=0.5)
    assert found[0] == pytest.approx(112, abs=1.5) and found[1] < 112 - 40 * 224 / 150 + 2   # straight up
    np.testing.assert_array_equal(paddings, [[0, 0, 0, 0]])


def test_letterbox_of_a_wide_photo():
    square, padding = pad_to_square(Region(320.0, 240.0, 640.0, 480.0))
    assert (square.width, square.height) == (640.0, 640.0)
    np.testing.assert_allclose(padding, [0, 0.125, 0, 0.125])
    np.testing.assert_allclose(remove_letterbox(np.array([[0.5, 0.125], [1.0, 0.875]]), padding), [[0.5, 0.0], [1.0, 1.0]])


def test_merge_regions_keeps_one_region_per_hand_the_later_one():
    palm = Region(100, 100, 80, 80, 0.3)
    tracked = Region(105, 102, 84, 84, 0.1)
    other = Region(300, 100, 80, 80, 0.0)
    assert region_iou(palm, tracked) > 0.5
    assert merge_regions([palm, other], [tracked]) == [other, tracked]
    assert merge_regions([palm], []) == [palm]


# ----------------------------------------------------------------------------- tracking flow

LandmarkOutput = collections.namedtuple("LandmarkOutput", "landmarks presence handedness world")


class FakePalmNet(torch.nn.Module):
    """One palm, upright, at a fixed place of the 192 px input; counts its calls."""
    INPUT_RANGE = (0.0, 1.0)

    def __init__(self):
        super().__init__()
        self.weight, self.calls, self.score = torch.nn.Parameter(torch.zeros(1)), 0, 5.0

    def forward(self, image):
        self.calls += 1
        raw = torch.zeros(image.shape[0], 2016, 18)
        scores = torch.full((image.shape[0], 2016), -20.0)
        k = 1152 + 6 * (12 * 6 + 6)                             # cell (6, 6): the input's centre
        raw[:, k, 2:4] = 18.0                                    # its hand region is about the tracked one
        raw[:, k, 4:6] = torch.tensor([0.0, 20.0])               # wrist below ...
        raw[:, k, 8:10] = torch.tensor([0.0, -20.0])             # ... the middle finger's base
        scores[:, k] = self.score
        return raw, scores


class FakeLandmarkNet(torch.nn.Module):
    """An upright hand in the middle of every crop, with a settable presence."""
    INPUT_RANGE = (0.0, 1.0)

    def __init__(self):
        super().__init__()
        self.weight, self.presence, self.handedness = torch.nn.Parameter(torch.zeros(1)), 0.9, 0.8
        hand = _upright_hand(112.0, 190.0, 60.0)
        self.hand = torch.tensor(np.concatenate([hand, np.zeros((21, 1))], 1), dtype=torch.float32)

    def forward(self, image, features=False):
        b = image.shape[0]
        out = LandmarkOutput(self.hand.expand(b, 21, 3), torch.full((b,), self.presence),
                             torch.full((b,), self.handedness), torch.zeros(b, 21, 3))
        return (out, {"head_c4": torch.ones(b, 4, 7, 7)}) if features else out


def test_tracking_skips_the_palm_detector_while_it_holds_the_hands_and_redetects_when_it_loses_one():
    palm_net, landmark_net = FakePalmNet(), FakeLandmarkNet()
    tracker = HandTracker(PalmFinder(palm_net, 0.5), HandLandmarker(landmark_net), max_hands=1, video=True)
    frame = np.full((480, 640, 3), 128, np.uint8)
    first = tracker(frame)
    assert len(first) == 1 and palm_net.calls == 1 and first[0].side == "right"
    second = tracker(frame)                                     # tracked: no palm detection
    assert len(second) == 1 and palm_net.calls == 1
    assert second[0].region == region_from_landmarks(first[0].landmarks[:, :2])
    landmark_net.presence = 0.3                                 # the hand is lost ...
    assert tracker(frame) == [] and palm_net.calls == 1
    landmark_net.presence = 0.9                                 # ... and found again by the palm detector
    assert len(tracker(frame)) == 1 and palm_net.calls == 2
    photo = HandTracker(PalmFinder(palm_net, 0.5), HandLandmarker(landmark_net), max_hands=1, video=False)
    photo(frame), photo(frame)
    assert palm_net.calls == 4                                  # photos: the palm detector every time


def test_two_hands_wanted_one_tracked_runs_the_palm_detector_and_drops_the_duplicate():
    palm_net, landmark_net = FakePalmNet(), FakeLandmarkNet()
    tracker = HandTracker(PalmFinder(palm_net, 0.5), HandLandmarker(landmark_net), max_hands=2, video=True)
    frame = np.full((480, 640, 3), 128, np.uint8)
    first = tracker(frame)
    assert not first[0].tracked and tracker._palm_thread is None     # nothing tracked: palms in this thread
    hands = tracker(frame)                                      # palm region and tracked region: one hand
    assert palm_net.calls == 2 and len(hands) == 1 and hands[0].tracked
    assert hands[0].region == region_from_landmarks(first[0].landmarks[:, :2])
    thread = tracker._palm_thread                               # the palm detector ran beside the tracked pass
    assert thread is not None
    tracker.close()
    assert tracker._palm_thread is None and thread._shutdown


def test_a_tracked_left_hand_is_looked_at_mirrored():
    palm_net, landmark_net = FakePalmNet(), FakeLandmarkNet()
    landmark_net.handedness = 0.2                               # MediaPipe's "Right": the person's left hand
    tracker = HandTracker(PalmFinder(palm_net, 0.5), HandLandmarker(landmark_net), max_hands=1, video=True)
    frame = np.full((480, 640, 3), 128, np.uint8)
    (first,) = tracker(frame)
    assert first.side == "left" and not first.region.mirrored and first.seen.handedness == pytest.approx(0.2)
    assert tracker.tracked == [region_from_landmarks(first.landmarks[:, :2], mirrored=True)]
    (second,) = tracker(frame)                                  # the model saw the crop mirrored: its 0.2
    assert second.tracked and second.region.mirrored            # is flipped back to P(right) = 0.8, which
    # joins the first frame's evidence (core.perception.hand_sides): 0.9 log(0.2/0.8) + log(0.8/0.2)
    assert second.right == pytest.approx(1 / (1 + np.exp(-0.1 * np.log(4)))) and second.seen.handedness == pytest.approx(0.2)


def test_palm_every_n_frames_while_a_hand_is_tracked():
    palm_net, landmark_net = FakePalmNet(), FakeLandmarkNet()
    tracker = HandTracker(PalmFinder(palm_net, 0.5), HandLandmarker(landmark_net), max_hands=2, video=True, palm_every=3)
    frame = np.full((480, 640, 3), 128, np.uint8)
    calls = []
    for _ in range(7):
        assert len(tracker(frame)) == 1
        palm_net.score = -20.0                      # no more palms: one hand stays tracked
        calls.append(palm_net.calls)
    assert calls == [1, 1, 1, 2, 2, 2, 3]           # frame 0 (nothing tracked), then every 3rd frame
    landmark_net.presence = 0.1
    assert tracker(frame) == [] and palm_net.calls == 3         # lost ...
    tracker(frame)
    assert palm_net.calls == 4                                  # ... so the next frame detects again
