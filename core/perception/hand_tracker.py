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

Beyond MediaPipe's graph, for video identity (issue 19): a tracked hand keeps its side (the side
reported is the evidence of all its frames, not this frame's call alone), and a frame's two hands are
one left and one right hand (``core.perception.hand_sides``). When a tracked hand is lost, the palm
detector runs on every frame for SEARCH_FRAMES frames (not only every ``palm_every``-th: a hand that
went behind the other one comes out again elsewhere, and on the rendered benchmark clips the palm
detector found such hands 1-3 frames before its every-4th-frame turn), and for LOST_FRAMES frames the
landmark model looks again in the region where it was lost: the palm detector misses hands seen
edge-on or with their fingers in each other's, which the landmark model still sees there. A hand
found there that is another hand of the frame (one that moved in front) is dropped, and a hand the
palm detector finds on such a region keeps the lost hand's side evidence. Each hand carries a
``chain`` number, kept while a region follows it from frame to frame and new where it is found anew
(by the palm detector or in a lost hand's region): the frames of one chain are one hand, so the
engine can tell a side misread within them (``core.engine.track_links``). Two tracked regions that
end on one hand (their wrists and middle fingers in one place: one slid onto the other hand as it
passed in front) give one result, that of the region it moved least in.

    tracker = HandTracker.load(max_hands=2, video=True, device="cpu")
    for rgb in frames:
        hands = tracker(rgb)          # [Hand], see core.perception.hand_landmarker
"""

from __future__ import annotations

import concurrent.futures
import functools

import numpy as np
import torch

from . import load_hand_landmarks, load_palm_detector
from .hand_landmarker import HandLandmarker, same_palm
from .hand_sides import one_of_each_side, probability, side_evidence
from .palm_finder import PalmFinder
from .regions import SAME_HAND_IOU, Region, merge_regions, region_from_landmarks, region_from_palm, region_iou
from .ssd import box_iou_matrix

LOST_FRAMES = 8           # video: frames a lost hand's region is looked in again
SEARCH_FRAMES = 30        # video: frames after a loss the palm detector runs on every frame
SAME_HAND_BOX_IOU = 0.3   # ... and a hand found there whose landmark box overlaps another's this much is that one
SAME_PALM = 0.25          # two hands whose wrists and middle fingers are this close (hand sizes) are one
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
    ``reset()`` forgets the tracked hands; ``close()`` ends the palm detector's thread.

    While some hands are tracked and the palm detector looks for more, it runs in a thread of its
    own beside the landmark model's pass over the tracked regions (a palm region can only be replaced
    by a tracked one, never the reverse, so those passes need not wait for it); the landmark model
    then looks in the palm regions that are left. The hands are the same as in one pass over all
    regions, and on two cores the palm detector leaves the frame's critical path.
    """

    def __init__(self, palms: PalmFinder, landmarker: HandLandmarker, max_hands: int = 2, video: bool = False,
                 palm_every: int = 1):
        self.palms, self.landmarker, self.max_hands, self.video = palms, landmarker, max_hands, video
        self.palm_every = max(1, int(palm_every))
        self.tracked: list[Region] = []
        self._evidence: dict[int, float] = {}     # id of a tracked region -> its hand's side evidence
        self._chains: dict[int, int] = {}         # id of a tracked region -> its hand's chain number
        self._next_chain = 0
        self._lost: list[tuple[Region, float, int]] = []   # lost hands' regions, side evidence, frames since
        self._since_palms = 0           # frames since the palm detector last ran
        self.palm_runs = 0              # frames the palm detector ran on (the benchmark counts its cadence)
        self._since_loss = SEARCH_FRAMES + 1   # frames since a tracked hand was last lost
        self._palm_thread: concurrent.futures.ThreadPoolExecutor | None = None

    @classmethod
    def load(cls, max_hands: int = 2, min_confidence: float = 0.5, video: bool = False, variant: str = "full",
             device="cpu", bf16: bool = False, palm_every: int = 1) -> "HandTracker":
        palm, landmarks = load_networks(variant, str(torch.device(device)))
        return cls(PalmFinder(palm, min_confidence), HandLandmarker(landmarks, bf16=bf16), max_hands, video, palm_every)

    def reset(self) -> None:
        self.tracked, self._evidence, self._chains, self._lost, self._since_palms = [], {}, {}, [], 0
        self._since_loss = SEARCH_FRAMES + 1

    def close(self) -> None:
        if self._palm_thread is not None:
            self._palm_thread.shutdown(wait=True)
            self._palm_thread = None

    def __call__(self, rgb: np.ndarray) -> list:
        tracked = merge_regions(self.tracked) if self.video else []      # one region per tracked hand
        lost = [r for r, _, _ in self._lost] if len(tracked) < self.max_hands else []
        self._since_palms += 1
        self._since_loss += 1
        palms = None
        if len(tracked) < self.max_hands and (not tracked or self._since_palms >= self.palm_every
                                              or self._since_loss <= SEARCH_FRAMES):
            palms = self._palms_beside(rgb) if tracked else self.palms(rgb)
            self._since_palms = 0
            self.palm_runs += 1
        found = dict(zip(map(id, tracked), self.landmarker.look(rgb, tracked)))
        palm_regions = []
        if palms is not None:
            palms = palms.result() if isinstance(palms, concurrent.futures.Future) else palms
            palm_regions = [region_from_palm(p.box, p.keypoints) for p in palms[:self.max_hands]]
        regions = merge_regions(lost, palm_regions, tracked)
        new = [r for r in regions if id(r) not in found]
        found.update(zip(map(id, new), self.landmarker.look(rgb, new)))
        before = {**self._found_again(palm_regions), **{id(r): e for r, e, _ in self._lost}, **self._evidence}
        hands, evidence = [], []
        for region in regions:
            hand = found[id(region)]
            if hand is not None:
                hand.tracked = any(region is r for r in tracked + lost)
                hand.chain = self._chain(region, tracked)
                hands.append(hand)
                evidence.append(side_evidence(hand.right, before.get(id(region))))
        if self.video:
            hands, evidence = self._one_per_hand(hands, evidence, lost)
            if self.max_hands == 2:                            # two hands: a person's left and right
                evidence = one_of_each_side(evidence)
            for hand, e in zip(hands, evidence):
                hand.right = probability(e)
            if sum(any(h.region is r for r in tracked) for h in hands) < len(tracked):
                self._since_loss = 0                           # a tracked hand was lost: palms on the next frames
        self.tracked = [region_from_landmarks(h.landmarks[:, :2], mirrored=h.side == "left") for h in hands]
        self._remember_lost(tracked, hands)
        self._evidence = dict(zip(map(id, self.tracked), evidence))
        self._chains = {id(r): h.chain for r, h in zip(self.tracked, hands)}
        return hands

    def _chain(self, region: Region, tracked: list[Region]) -> int:
        """The chain number of the hand found in ``region``: that of the hand a tracked region came from,
        else a new one (video; a photo's hands all get -1)."""
        if not self.video:
            return -1
        if any(region is r for r in tracked) and id(region) in self._chains:
            return self._chains[id(region)]
        self._next_chain += 1
        return self._next_chain

    def _found_again(self, palm_regions: list[Region]) -> dict[int, float]:
        """{id of a palm region: side evidence} for palm regions on a lost hand's region (IoU > SAME_HAND_IOU,
        the most overlapped): the palm detector found that hand again, and it keeps its side."""
        out = {}
        for region in palm_regions:
            overlaps = [(region_iou(region, r), e) for r, e, _ in self._lost]
            if overlaps and max(overlaps)[0] > SAME_HAND_IOU:
                out[id(region)] = max(overlaps)[1]
        return out

    def _one_per_hand(self, hands: list, evidence: list, lost: list[Region]) -> tuple[list, list]:
        """One result per hand in a video frame. Two results are one hand when they share the palm
        (``same_palm``, SAME_PALM: a tracked region slid onto the other hand as it passed in front),
        or when one was found again in a lost hand's old region and their landmark boxes overlap by
        more than SAME_HAND_BOX_IOU (the old region now holds the hand in front). Kept first: hands of
        tracked regions, then those that moved least from their region (its centre, in region widths)."""
        again = [any(h.region is r for r in lost) for h in hands]
        boxes = np.stack([np.concatenate([h.landmarks[:, :2].min(0), h.landmarks[:, :2].max(0)]) for h in hands]) \
            if hands else np.zeros((0, 4))
        overlap = box_iou_matrix(boxes, boxes)
        moved = [float(np.hypot(*(h.landmarks[:, :2].mean(0) - (h.region.cx, h.region.cy)))) / h.region.width for h in hands]
        kept: list[int] = []
        for k in sorted(range(len(hands)), key=lambda k: (again[k], moved[k])):
            if not any(same_palm(hands[k], hands[j], SAME_PALM) or (again[k] and overlap[k, j] > SAME_HAND_BOX_IOU)
                       for j in kept):
                kept.append(k)
        kept.sort()
        return [hands[k] for k in kept], [evidence[k] for k in kept]

    def _remember_lost(self, tracked: list[Region], hands: list) -> None:
        """Keeps, for LOST_FRAMES frames, the regions of tracked hands that were not found (with their side
        evidence), unless a hand found since is there: the landmark model looks in them again while fewer
        than ``max_hands`` hands are tracked (the palm detector misses hands that it can see there)."""
        if not self.video:
            return
        seen = {id(h.region) for h in hands}
        gone = [(r, self._evidence.get(id(r), 0.0), 0) for r in tracked if id(r) not in seen]
        older = [(r, e, age) for r, e, age in self._lost if id(r) not in seen]
        self._lost = [(r, e, age + 1) for r, e, age in gone + older if age + 1 <= LOST_FRAMES and
                      all(region_iou(r, t) <= SAME_HAND_IOU for t in self.tracked)][:self.max_hands]

    def _palms_beside(self, rgb: np.ndarray) -> concurrent.futures.Future:
        """The palm detector's finds in ``rgb``, computed in the tracker's palm thread."""
        if self._palm_thread is None:
            self._palm_thread = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="palms")
        return self._palm_thread.submit(self.palms, rgb)
