"""Video: what a chunk of frames' detections say about each hand, used before the fit (issue 19).

The video detector follows each hand from frame to frame and numbers each such run of frames
(``Detection.chain``, core.perception.hand_tracker). The engine detects a whole chunk of frames
before it fits any of them, so within a chunk it can look ahead:

- ``settle_sides``: a hand cannot change side. Within a chain (this chunk's frames and the earlier
  ones), a short run of frames called the other side than most of the chain's frames is that hand
  with its side misread (``track_links.side_misreads``: at most MISREAD_FRAMES frames; a hand that
  comes into view or out from behind the other one is often called the wrong side at first, and the
  detector's side evidence lags). Those detections get the chain's side before they are fitted, so
  the frame is fitted with the right hand model instead of being dropped afterwards; unless the
  frame already has a hand of that side (the chain's region slid onto the frame's other hand).
- ``look_back``: a chain that starts inside the chunk is a hand found anew (coming into the picture,
  out from behind something, or out of motion blur) by the palm detector, which needs most of a palm
  to see it; the landmark model, given a window where the hand is, sees it earlier. So the frames
  before the chain's first are looked at in the window the next frame's landmarks give (MediaPipe's
  tracking step, run backwards), up to LOOK_BACK frames, while the hand is found there and is not
  another detection of that frame.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import numpy as np

from .detect import Detection, box_iou, window_from_landmarks
from .pipeline import SIDE_SURE
from .track_links import side_misreads

LOOK_BACK = 15            # frames before a chain's first that are looked at for its hand
SAME_HAND_IOU = 0.3       # a hand looked back for that overlaps a detection of that frame this much is that one

Look = Callable[[np.ndarray, object], Optional[Detection]]   # (rgb (H, W, 3), window) -> the hand there, or None


def settle_sides(frames: list[int], detections: list[list[Detection]],
                 history: dict[int, list[tuple[int, str, int]]]) -> list[list[Detection]]:
    """frames: this chunk's frame numbers; detections: per frame, its hands; history: chain -> (frame,
    side, chain) of the earlier chunks' hands as the detector called them (extended here with this
    chunk's). Returns the detections with each chain's short misread runs given the chain's side. A
    run that reaches the chunk's last frame is left as it is: how long it lasts is not known yet (a
    misread that stays is dropped after the fit, ``track_links.side_misreads``)."""
    here = [(f, d.side, d.chain) for f, found in zip(frames, detections) for d in found if d.chain >= 0]
    chains = {chain for _, _, chain in here}
    misread = side_misreads([seen for chain in chains for seen in history.get(chain, [])] + here)
    misread -= _runs_to(frames[-1], misread) if frames else set()
    out = []
    for f, found in zip(frames, detections):
        out.append([_other_side(d) if (f, d.chain) in misread and d.chain >= 0 and not _side_taken(d, found) else d
                    for d in found])
    for seen in here:
        history.setdefault(seen[2], []).append(seen)
    return out


def _runs_to(last: int, misread: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """Of the misread (frame, chain) pairs, the runs that end at frame ``last`` (consecutive frames)."""
    out = set()
    for chain in {c for _, c in misread}:
        f = last
        while (f, chain) in misread:
            out.add((f, chain))
            f -= 1
    return out


def look_back(rgbs: list[np.ndarray], detections: list[list[Detection]], known_chains: set[int],
              look: Look, depth: int = LOOK_BACK) -> list[list[Detection]]:
    """rgbs: this chunk's frames (H, W, 3) uint8; detections: per frame, its hands; known_chains: the
    chains seen in earlier chunks (extended here); look: the landmark model in a window. Returns the
    detections with each new chain's hand added to the frames before its first, where it is seen."""
    out = [list(found) for found in detections]
    for j, found in enumerate(detections):
        for d in found:
            if d.chain < 0 or d.chain in known_chains:
                continue
            known_chains.add(d.chain)
            later = d
            for i in range(j - 1, max(-1, j - 1 - depth), -1):
                hand = look(rgbs[i], window_from_landmarks(later.keypoints_2d))
                if hand is None or any(box_iou(hand.box, other.box) > SAME_HAND_IOU for other in out[i]):
                    break
                later = dataclasses.replace(hand, side=d.side, score=d.score, chain=d.chain, source="back")
                out[i].append(later)
    return out


def _side_taken(d: Detection, found: list[Detection]) -> bool:
    """Whether another hand of the frame already has the side ``d`` would get: then ``d`` is likely
    that frame's other hand, which the chain's region slid onto, read rightly (the two hands of a
    frame are one left and one right: core.perception.hand_sides). It is left as it is (and dropped
    after the fit if it stays a misread: ``track_links.side_misreads``)."""
    return any(other is not d and other.side != d.side for other in found)


def _other_side(d: Detection) -> Detection:
    """The detection as the other side's hand (its tracked crop, cut for the old side, is not reused);
    its score, the confidence in the old side, becomes 1 - score, at least SIDE_SURE (the chain says
    which side; this frame alone said the other)."""
    return dataclasses.replace(d, side="left" if d.side == "right" else "right", score=max(1.0 - d.score, SIDE_SURE),
                               tracked_region=None, seen=None)


class ChunkChains:
    """``settle_sides`` then ``look_back`` over one video's chunks, in order (what they remember of the
    earlier chunks)."""

    def __init__(self, look: Look):
        self.look = look
        self.history: dict[int, list[tuple[int, str, int]]] = {}
        self.known: set[int] = set()

    def __call__(self, frames: list[int], rgbs: list[np.ndarray], detections: list[list[Detection]]) -> list[list[Detection]]:
        return look_back(rgbs, settle_sides(frames, detections, self.history), self.known, self.look)
