"""Hands in photos and videos: MediaPipe's hand_landmark_tracking graph in handcap's torch modules.

Per frame: the regions tracked from the last frame's landmarks (video only); when they are fewer
than ``max_hands``, the palm detector runs too and its best ``max_hands`` palms give regions (with
``palm_every`` = n > 1, while at least one hand is tracked it runs on every n-th frame only: a
second hand is then found up to n - 1 frames late, for about half the work per frame); the
two sets are merged (a tracked region replaces a palm region of the same hand, IoU > 0.5); the
landmark model looks in every region (one batch) and keeps the regions where a hand is present;
their landmarks give the next frame's regions, mirrored for a left hand (``Region.mirrored``: the
model sees every tracked hand as a right one). That is the crop a network on the landmark trunk
wants, so the engine reuses the pass over it (``Hand.seen`` of a ``Hand.tracked``) instead of
running the model again. MediaPipe does not mirror: a left hand's landmarks move by 2.7 crop px on
average (median 1.8) between the two views of 72 hands in real photos, and were as close to the
truth either way on held-out synthetic renders (mean error 0.0976 of the hand's size unmirrored,
0.0983 mirrored, 49 left hands; right hands 0.110 and 0.106). A photo is a frame with nothing tracked.

    tracker = HandTracker.load(max_hands=2, video=True, device="cpu")
    for rgb in frames:
        hands = tracker(rgb)          # [Hand], see core.perception.hand_landmarker
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from . import load_hand_landmarks, load_palm_detector
from .hand_landmarker import HandLandmarker
from .palm_finder import PalmFinder
from .regions import Region, merge_regions, region_from_landmarks, region_from_palm

VARIANTS = ("full", "lite")      # MediaPipe's model_complexity 1 and 0: both networks of that size


@functools.lru_cache(maxsize=None)
def load_networks(variant: str, device: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(palm detector, landmark model) of one variant on one device, loaded once per process
    (read-only in eval mode, so the photo and the video detectors share them)."""
    if variant not in VARIANTS:
        raise ValueError(f"landmark model must be one of {VARIANTS}, got {variant!r}")
    return load_palm_detector(variant, device=device), load_hand_landmarks(variant, device=device)   # eval, channels-last


class HandTracker:
    """``tracker(rgb) -> [Hand]``: MediaPipe Hands' graph (see the module docstring).

    max_hands: hands per frame the palm detector looks for; video: track from frame to frame
    (frames in order); palm_every: see the module docstring (1: MediaPipe's graph exactly);
    ``reset()`` forgets the tracked hands.
    """

    def __init__(self, palms: PalmFinder, landmarker: HandLandmarker, max_hands: int = 2, video: bool = False,
                 palm_every: int = 1):
        self.palms, self.landmarker, self.max_hands, self.video = palms, landmarker, max_hands, video
        self.palm_every = max(1, int(palm_every))
        self.tracked: list[Region] = []
        self._since_palms = 0           # frames since the palm detector last ran

    @classmethod
    def load(cls, max_hands: int = 2, min_confidence: float = 0.5, video: bool = False, variant: str = "full",
             device="cpu", bf16: bool = False, palm_every: int = 1) -> "HandTracker":
        palm, landmarks = load_networks(variant, str(torch.device(device)))
        return cls(PalmFinder(palm, min_confidence), HandLandmarker(landmarks, bf16=bf16), max_hands, video, palm_every)

    def reset(self) -> None:
        self.tracked, self._since_palms = [], 0

    def __call__(self, rgb: np.ndarray) -> list:
        tracked = self.tracked if self.video else []
        palm_regions = []
        self._since_palms += 1
        if len(tracked) < self.max_hands and (not tracked or self._since_palms >= self.palm_every):
            palm_regions = [region_from_palm(p.box, p.keypoints) for p in self.palms(rgb)[:self.max_hands]]
            self._since_palms = 0
        regions = merge_regions(palm_regions, tracked)
        hands = []
        for region, hand in zip(regions, self.landmarker.look(rgb, regions)):
            if hand is not None:
                hand.tracked = any(region is t for t in tracked)
                hands.append(hand)
        self.tracked = [region_from_landmarks(h.landmarks[:, :2], mirrored=h.side == "left") for h in hands]
        return hands
