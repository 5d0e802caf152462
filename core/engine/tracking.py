"""Video: keep each hand's identity across frames (the temporal solve of a track is core.engine.temporal).

Association is greedy per frame: a hand joins the live track of the same side whose last box
overlaps it most (IoU >= MIN_IOU, or centres closer than a box side; a track unseen for a while
counts a little less, so a hand found twice for a moment does not take its track over); a track
unseen for MAX_GAP frames ends; ``core.engine.track_links`` joins the pieces of one hand at the end.
Frames where a track has no hand go to the temporal solve (short gaps filled: core.engine.temporal).
A hand that matches no track of its side but covers the place of the other side's hand of the
frame before is that hand with its side misread, unless it keeps the new side FLIP_CONFIRM frames:
such a flip is held as a tentative track and dropped when it does not last (the hand's own track
just misses those frames).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .detect import box_iou
from .pipeline import HandEstimate

MIN_IOU = 0.1
MAX_GAP = 15  # frames
FLIP_IOU = 0.5       # overlap with the other side's hand of the frame before that makes a side flip
FLIP_CONFIRM = 3     # frames a flipped side must last to become a track of its own
STALE = 0.98         # per frame a track went unseen, its match scores count this much less


@dataclasses.dataclass
class Track:
    """One hand over a video: per frame index, its estimate (absent = not seen)."""

    side: str
    frames: dict = dataclasses.field(default_factory=dict)   # frame number -> HandEstimate
    last_box: np.ndarray = None
    last_frame: int = -1
    tentative: bool = False      # a side flip not yet confirmed (see the module docstring)


def _close(track: Track, hand: HandEstimate) -> float:
    """Match score of a hand for a track: IoU, or a small positive score when the centres are near."""
    iou = box_iou(track.last_box, hand.box)
    if iou >= MIN_IOU:
        return iou
    a, b = track.last_box, hand.box
    distance = np.linalg.norm((a[:2] + a[2:]) / 2 - (b[:2] + b[2:]) / 2)
    return 0.05 if distance < max(a[2] - a[0], a[3] - a[1], 1.0) else 0.0


class Tracker:
    """Feed ``update(frame, hands)`` in frame order; ``tracks`` holds every track made. ``close``: the
    match score of a hand for a track, (track, hand) -> float, > 0 where they may be one hand (default:
    their boxes in the picture; several cameras pass their own, core.multiview.video)."""

    def __init__(self, close=None):
        self._tracks: list[Track] = []
        self._close = close or _close

    @property
    def tracks(self) -> list[Track]:
        """The tracks made so far, side flips that did not last left out."""
        return [t for t in self._tracks if not t.tentative]

    def update(self, frame: int, hands: list[HandEstimate]) -> None:
        live = [t for t in self._tracks if frame - t.last_frame <= MAX_GAP]
        pairs = sorted(((self._close(t, h) * STALE ** (frame - 1 - t.last_frame), ti, hi) for ti, t in enumerate(live)
                        for hi, h in enumerate(hands) if t.side == h.side), reverse=True)
        used_tracks, used_hands = set(), set()
        for score, ti, hi in pairs:
            if score <= 0 or ti in used_tracks or hi in used_hands:
                continue
            self._add(live[ti], frame, hands[hi])
            used_tracks.add(ti)
            used_hands.add(hi)
        for hi, hand in enumerate(hands):
            if hi not in used_hands:
                flipped = any(t.side != hand.side and not t.tentative and t.last_frame == frame - 1
                              and box_iou(t.last_box, hand.box) >= FLIP_IOU for t in live)
                track = Track(side=hand.side, tentative=flipped)
                self._tracks.append(track)
                self._add(track, frame, hand)

    @staticmethod
    def _add(track: Track, frame: int, hand: HandEstimate) -> None:
        track.frames[frame] = hand
        track.last_box, track.last_frame = hand.box, frame
        if track.tentative and len(track.frames) >= FLIP_CONFIRM:
            track.tentative = False
