"""Find hands in a full photo or frame with MediaPipe Hands (0.10.21, trained on real photos).

MediaPipe gives, per hand, 21 landmarks in the FreiHAND/OpenPose order our networks use and a
handedness label. Its label assumes a mirrored (selfie) image, so for an ordinary photo "Left"
means the person's right hand: ``Detection.side`` is the real side.
"""

from __future__ import annotations

import dataclasses
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
    source: str = "mediapipe"               # "mediapipe" | "box" (given by the user) | "search"


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


class HandDetector:
    """MediaPipe Hands: ``detect(rgb) -> [Detection]`` for one photo or successive video frames.

    max_hands: at most this many hands per image; min_confidence: MediaPipe's detection threshold;
    video: track landmarks from frame to frame (faster; frames must be given in order).
    """

    def __init__(self, max_hands: int = 2, min_confidence: float = 0.3, video: bool = False):
        os.environ.setdefault("GLOG_minloglevel", "2")      # MediaPipe's C++ logging: errors only
        import mediapipe as mp
        self.max_hands = max_hands
        self._hands = mp.solutions.hands.Hands(static_image_mode=not video, max_num_hands=max_hands,
                                               model_complexity=1, min_detection_confidence=min_confidence,
                                               min_tracking_confidence=0.5)

    def close(self) -> None:
        self._hands.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def detect(self, rgb: np.ndarray, search: bool = False) -> list[Detection]:
        """(H, W, 3) uint8 RGB -> the hands in it, best first. With ``search``, a photo where the first
        pass finds nothing is searched again (``search_views``): MediaPipe's palm detector misses
        hands that fill the frame, and hands far from upright."""
        found = self._detect(rgb)
        for view, to_source in (search_views(rgb) if search and not found else []):
            for d in self._detect(view):
                points = to_source(d.keypoints_2d)
                found.append(Detection(box=np.concatenate([points.min(0), points.max(0)]), side=d.side,
                                       score=d.score, keypoints_2d=points, source="search"))
            if found:
                break
        return drop_duplicates(found)[:self.max_hands]

    def _detect(self, rgb: np.ndarray) -> list[Detection]:
        height, width = rgb.shape[:2]
        scale = min(1.0, DETECT_MAX_SIDE / max(height, width))
        small = rgb if scale == 1.0 else cv2.resize(rgb, (round(width * scale), round(height * scale)),
                                                    interpolation=cv2.INTER_AREA)
        result = self._hands.process(np.ascontiguousarray(small))
        detections = []
        for landmarks, handedness in zip(result.multi_hand_landmarks or [], result.multi_handedness or []):
            points = np.array([(p.x * width, p.y * height) for p in landmarks.landmark], np.float64)   # (21, 2)
            label = handedness.classification[0]
            detections.append(Detection(
                box=np.concatenate([points.min(0), points.max(0)]), side="right" if label.label == "Left" else "left",
                score=float(label.score), keypoints_2d=points))
        return drop_duplicates(detections)[:self.max_hands]


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
