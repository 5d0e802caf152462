"""Find hands in a full photo or frame with MediaPipe Hands (0.10.21, trained on real photos).

MediaPipe gives, per hand, 21 landmarks in the FreiHAND/OpenPose order our networks use and a
handedness label. Its label assumes a mirrored (selfie) image, so for an ordinary photo "Left"
means the person's right hand: ``Detection.side`` is the real side.

A photo is looked at in up to three passes, each only when the one before found nothing:
  1. MediaPipe Hands (palm detector, then the landmark model) on the photo;
  2. the same on ``search_views``: the photo shrunk inside a border and turned (close-ups, hands far
     from upright);
  3. ``RegionSweep``: MediaPipe's landmark model alone, on square windows of the photo at several
     sizes, positions and turns, kept only when it still finds the hand after re-centring and in
     perturbed views. The palm detector misses hands whose palm it cannot see (gloves, hands around
     an instrument or an object); the landmark model, given the right window, does not.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
from typing import Optional

import cv2
import numpy as np

DETECT_MAX_SIDE = 1280          # larger images are scaled down for detection (MediaPipe works at 192-256 px)
DUPLICATE_IOU = 0.5             # two detections overlapping more than this are one hand
DUPLICATE_CONTAINED = 0.8


@dataclasses.dataclass
class Detection:
    """One hand found in an image (pixels of the full image, x right, y down)."""

    box: np.ndarray                         # (4,) x0, y0, x1, y1
    side: str                               # "right" | "left" (the person's hand)
    score: float                            # detector confidence in [0, 1]
    keypoints_2d: Optional[np.ndarray]      # (21, 2) landmarks, or None (a box from the user)
    source: str = "mediapipe"               # "mediapipe" | "box" (given by the user) | "search" | "sweep"
    world_landmarks: Optional[np.ndarray] = None   # (21, 3) metres, camera axes, origin near the hand's centre


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (4,) x0, y0, x1, y1 boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def box_containment(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of the smaller of two (4,) boxes that lies inside the other."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return float(w * h / smaller) if smaller > 0 else 0.0


def drop_duplicates(detections: list[Detection], iou: float = DUPLICATE_IOU) -> list[Detection]:
    """Keep the best-scoring of every group of detections that are one hand: boxes overlapping by more
    than ``iou``, or a box mostly (DUPLICATE_CONTAINED) inside another of the same side."""
    kept = []
    for d in sorted(detections, key=lambda d: -d.score):
        if all(box_iou(d.box, k.box) <= iou and not (d.side == k.side and box_containment(d.box, k.box) > DUPLICATE_CONTAINED)
               for k in kept):
            kept.append(d)
    return kept


LANDMARK_MODELS = {"full": 1, "lite": 0}   # name -> MediaPipe's model_complexity


class HandDetector:
    """MediaPipe Hands: ``detect(rgb) -> [Detection]`` for one photo or successive video frames.

    max_hands: at most this many hands per image; min_confidence: MediaPipe's detection threshold;
    video: track landmarks from frame to frame (faster; frames must be given in order).
    landmarks: MediaPipe's landmark model, "full" or "lite" (on a 2-core CPU about 6 ms per frame
    faster; its landmarks were 22% further from the truth on held-out synthetic renders).
    """

    def __init__(self, max_hands: int = 2, min_confidence: float = 0.3, video: bool = False, landmarks: str = "full"):
        os.environ.setdefault("GLOG_minloglevel", "2")      # MediaPipe's C++ logging: errors only
        import mediapipe as mp
        self.max_hands = max_hands
        self._hands = mp.solutions.hands.Hands(static_image_mode=not video, max_num_hands=max_hands,
                                               model_complexity=LANDMARK_MODELS[landmarks],
                                               min_detection_confidence=min_confidence,
                                               min_tracking_confidence=0.5)
        self._sweep = None          # RegionSweep, made on first need (photos only)

    def close(self) -> None:
        self._hands.close()
        if self._sweep is not None:
            self._sweep.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def detect(self, rgb: np.ndarray, search: bool = False) -> list[Detection]:
        """(H, W, 3) uint8 RGB -> the hands in it, best first. With ``search``, a photo where the first
        pass finds nothing is searched again, first in ``search_views`` (MediaPipe's palm detector
        misses hands that fill the frame, and hands far from upright), then by ``RegionSweep``."""
        found = self._detect(rgb)
        for view, to_source in (search_views(rgb) if search and not found else []):
            for d in self._detect(view):
                points = to_source(d.keypoints_2d)
                found.append(_from_points(points, d.side, d.score, "search"))
            if found:
                break
        if search and not found:
            if self._sweep is None:
                self._sweep = RegionSweep()
            small, scale = _detection_view(rgb)
            found = [_from_points(d.keypoints_2d / scale, d.side, d.score, d.source)
                     for d in self._sweep.find(small, self.max_hands)]
        return drop_duplicates(found)[:self.max_hands]

    def _detect(self, rgb: np.ndarray) -> list[Detection]:
        height, width = rgb.shape[:2]
        small, _ = _detection_view(rgb)
        result = self._hands.process(small)
        detections = []
        worlds = result.multi_hand_world_landmarks or [None] * len(result.multi_hand_landmarks or [])
        for landmarks, handedness, world in zip(result.multi_hand_landmarks or [], result.multi_handedness or [], worlds):
            points = np.array([(p.x * width, p.y * height) for p in landmarks.landmark], np.float64)   # (21, 2)
            label = handedness.classification[0]
            detection = _from_points(points, _real_side(label.label), float(label.score))
            if world is not None:
                detection.world_landmarks = np.array([(p.x, p.y, p.z) for p in world.landmark], np.float64)
            detections.append(detection)
        return drop_duplicates(detections)[:self.max_hands]


def _real_side(mediapipe_label: str) -> str:
    """MediaPipe's handedness label (which assumes a mirrored image) -> the person's hand."""
    return "right" if mediapipe_label == "Left" else "left"


def _from_points(points: np.ndarray, side: str, score: float, source: str = "mediapipe") -> Detection:
    """A detection from (21, 2) landmarks in pixels; its box is theirs."""
    return Detection(box=np.concatenate([points.min(0), points.max(0)]), side=side, score=score,
                     keypoints_2d=points, source=source)


def _detection_view(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """The photo at most DETECT_MAX_SIDE pixels on its long side (contiguous), and its scale."""
    height, width = rgb.shape[:2]
    scale = min(1.0, DETECT_MAX_SIDE / max(height, width))
    if scale == 1.0:
        return np.ascontiguousarray(rgb), 1.0
    return cv2.resize(rgb, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA), scale


def search_views(rgb: np.ndarray) -> list:
    """Views of a photo for a second detection pass, each with the map of its pixels back to the
    photo's: the photo shrunk inside a grey border (a hand that fills the frame becomes one
    MediaPipe can see), then that view turned by 90, 270 and 180 degrees."""
    height, width = rgb.shape[:2]
    views = []
    for pad_fraction in (0.35,):
        pad = int(round(pad_fraction * max(height, width)))
        padded = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(114, 114, 114))
        ph, pw = padded.shape[:2]
        for turns in (0, 1, 3, 2):
            view = np.ascontiguousarray(np.rot90(padded, turns))

            def to_source(points, pad=pad, turns=turns, pw=pw, ph=ph):
                x, y = points[:, 0], points[:, 1]
                for j in range(turns, 0, -1):     # undo np.rot90 (counter-clockwise) one quarter at a time
                    width_before = pw if (j - 1) % 2 == 0 else ph
                    x, y = width_before - 1 - y, x
                return np.stack([x - pad, y - pad], axis=1)
            views.append((view, to_source))
    return views


# ------------------------------------------------------------------------------ region sweep

SWEEP_SCALES = (1.0, 0.6)       # window sides, fractions of the photo's short side (large hands only:
                                # small ones are the palm detector's strength, and small windows of
                                # clutter are where the landmark model sees hands that are not there)
SWEEP_TURNS = 4                 # window rotations tried: 0, 90, 180, 270 degrees
SWEEP_RECENTRE = 2              # re-centrings of a window on the landmarks it found
CHECK_VIEWS = ((0.35, 1.0, 0.0), (-0.35, 1.0, 0.0), (0.0, 0.8, 0.0), (0.0, 1.25, 0.0),
               (0.0, 1.0, 0.15), (0.0, 1.0, -0.15))   # (turn rad, size factor, shift in window sides)
CHECK_MIN_FOUND = 4             # of the CHECK_VIEWS, at least this many must find the hand again ...
CHECK_MAX_SHIFT = 0.10          # ... with landmarks (median over views) within this fraction of the hand's size

_LANDMARK_GRAPH = """
input_stream: "IMAGE:image"
input_stream: "ROI:roi"
output_stream: "LANDMARKS:landmarks"
output_stream: "HANDEDNESS:handedness"
node {
  calculator: "HandLandmarkCpu"
  input_side_packet: "MODEL_COMPLEXITY:model_complexity"
  input_stream: "IMAGE:image"
  input_stream: "ROI:roi"
  output_stream: "LANDMARKS:landmarks"
  output_stream: "HANDEDNESS:handedness"
}
"""


@dataclasses.dataclass
class Window:
    """A square region of a photo, turned: centre (pixels), side (pixels), rotation (radians, MediaPipe's
    convention: the angle by which the window is turned clockwise in the image)."""

    cx: float
    cy: float
    size: float
    rotation: float


def window_from_landmarks(points: np.ndarray) -> Window:
    """The window MediaPipe's tracker would look at next for (21, 2) landmarks: turned so that the
    wrist -> middle-finger base points up, twice the landmarks' extent in that frame."""
    wrist, middle = points[0], points[9]
    rotation = math.pi / 2 - math.atan2(-(middle[1] - wrist[1]), middle[0] - wrist[0])
    rotation = (rotation + math.pi) % (2 * math.pi) - math.pi
    c, s = math.cos(rotation), math.sin(rotation)
    to_window = np.array([[c, s], [-s, c]])               # image offsets -> window axes
    local = (points - points.mean(0)) @ to_window.T
    low, high = local.min(0), local.max(0)
    centre = points.mean(0) + to_window.T @ ((low + high) / 2)
    return Window(float(centre[0]), float(centre[1]), float(max(high - low) * 2.0), rotation)


def sweep_windows(height: int, width: int, scales=SWEEP_SCALES, turns: int = SWEEP_TURNS) -> list[Window]:
    """Windows covering a (height, width) photo: for each scale, squares of that fraction of the short
    side overlapping by half, each at ``turns`` rotations; largest first."""
    windows = []
    for scale in scales:
        side = scale * min(height, width)
        xs = np.linspace(side / 2, width - side / 2, max(1, math.ceil((width - side) / (side / 2)) + 1))
        ys = np.linspace(side / 2, height - side / 2, max(1, math.ceil((height - side) / (side / 2)) + 1))
        for cy, cx, turn in itertools.product(ys, xs, range(turns)):
            rotation = (turn * 2 * math.pi / turns + math.pi) % (2 * math.pi) - math.pi
            windows.append(Window(float(cx), float(cy), float(side), rotation))
    return windows


class RegionSweep:
    """MediaPipe's hand-landmark model run on chosen windows of a photo (MediaPipe's own
    ``HandLandmarkCpu`` graph, the one its tracker runs, fed our windows instead of the palm
    detector's). The model outputs landmarks only when its hand-presence score passes 0.5, so
    each window is a hand / no-hand test."""

    def __init__(self):
        import mediapipe as mp
        from google.protobuf import text_format
        from mediapipe.framework import calculator_pb2
        from mediapipe.python import packet_creator, packet_getter
        from mediapipe.python._framework_bindings import calculator_graph, image_frame, resource_util
        resource_util.set_resource_dir(os.path.dirname(os.path.dirname(mp.__file__)))
        self._packets, self._getter, self._image_format = packet_creator, packet_getter, image_frame.ImageFormat.SRGB
        config = text_format.Parse(_LANDMARK_GRAPH, calculator_pb2.CalculatorGraphConfig())
        self._graph = calculator_graph.CalculatorGraph(graph_config=config)
        self._out = {}
        for stream in ("landmarks", "handedness"):
            self._graph.observe_output_stream(
                stream, lambda name, packet: self._out.__setitem__(name, self._getter.get_proto(packet)))
        self._graph.start_run(input_side_packets={"model_complexity": packet_creator.create_int(1)})
        self._time = 0

    def close(self) -> None:
        self._graph.close()

    def probe(self, rgb: np.ndarray, image_packet, window: Window) -> Optional[Detection]:
        """The hand MediaPipe's landmark model finds in ``window`` of ``rgb`` (H, W, 3), or None."""
        from mediapipe.framework.formats import rect_pb2
        height, width = rgb.shape[:2]
        roi = rect_pb2.NormalizedRect(x_center=window.cx / width, y_center=window.cy / height,
                                      width=window.size / width, height=window.size / height, rotation=window.rotation)
        self._out.clear()
        self._time += 1
        self._graph.add_packet_to_input_stream("image", image_packet.at(self._time))
        self._graph.add_packet_to_input_stream("roi", self._packets.create_proto(roi).at(self._time))
        self._graph.wait_until_idle()
        if "landmarks" not in self._out:
            return None
        points = np.array([(p.x * width, p.y * height) for p in self._out["landmarks"].landmark], np.float64)
        label = self._out["handedness"].classification[0]
        return _from_points(points, _real_side(label.label), float(label.score), "sweep")

    def find(self, rgb: np.ndarray, max_hands: int = 2) -> list[Detection]:
        """(H, W, 3) uint8 RGB -> hands found by sweeping ``sweep_windows``, best first. A window's
        find counts when it survives SWEEP_RECENTRE re-centrings and ``is_stable``."""
        image_packet = self._packets.create_image_frame(image_format=self._image_format, data=rgb)
        found = []
        for window in sweep_windows(*rgb.shape[:2]):
            if any(_inside(window, d.box) for d in found):
                continue                  # that hand is found already
            hand = self.probe(rgb, image_packet, window)
            for _ in range(SWEEP_RECENTRE):
                if hand is not None:
                    hand = self.probe(rgb, image_packet, window_from_landmarks(hand.keypoints_2d))
            if hand is not None and self.is_stable(rgb, image_packet, hand):
                found = drop_duplicates(found + [hand])
                if len(found) >= max_hands:
                    break
        return found

    def look_in(self, rgb: np.ndarray, box) -> Optional[Detection]:
        """The hand in a box the user drew, (4,) x0, y0, x1, y1 pixels of ``rgb`` (H, W, 3): the
        landmark model's find in a window around the box (tried at SWEEP_TURNS turns, then
        re-centred once), with its side and landmarks; None when it sees no hand there."""
        small, scale = _detection_view(rgb)
        x0, y0, x1, y1 = (float(v) * scale for v in box)
        image_packet = self._packets.create_image_frame(image_format=self._image_format, data=small)
        for turn in range(SWEEP_TURNS):
            rotation = (turn * 2 * math.pi / SWEEP_TURNS + math.pi) % (2 * math.pi) - math.pi
            window = Window((x0 + x1) / 2, (y0 + y1) / 2, 1.5 * max(x1 - x0, y1 - y0), rotation)
            hand = self.probe(small, image_packet, window)
            if hand is not None:
                hand = self.probe(small, image_packet, window_from_landmarks(hand.keypoints_2d)) or hand
                return _from_points(hand.keypoints_2d / scale, hand.side, hand.score, "box")
        return None

    def is_stable(self, rgb: np.ndarray, image_packet, hand: Detection) -> bool:
        """Whether the landmark model finds the same hand in views turned, scaled and shifted around
        it (CHECK_VIEWS): a real hand is found again in place; shapes it merely mistakes for a hand
        tend to vanish or move."""
        home = window_from_landmarks(hand.keypoints_2d)
        hand_size = float(np.linalg.norm(hand.box[2:] - hand.box[:2]))
        shifts = []
        for turn, factor, shift in CHECK_VIEWS:
            view = Window(home.cx + shift * home.size, home.cy, home.size * factor, home.rotation + turn)
            again = self.probe(rgb, image_packet, view)
            shifts.append(np.inf if again is None else
                          float(np.linalg.norm(again.keypoints_2d - hand.keypoints_2d, axis=1).mean()) / hand_size)
        return sum(np.isfinite(shifts)) >= CHECK_MIN_FOUND and float(np.median(shifts)) <= CHECK_MAX_SHIFT


def _inside(window: Window, box: np.ndarray) -> bool:
    """Whether a window's centre lies in a (4,) box."""
    return bool(box[0] <= window.cx <= box[2] and box[1] <= window.cy <= box[3])
