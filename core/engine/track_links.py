"""A finished video's tracks -> one track per hand (offline, after the last frame).

The online ``Tracker`` (core/engine/tracking.py) links a hand from frame to frame while it is seen;
a hand lost for longer than its MAX_GAP, or one that leaves the picture and comes back, starts a new
track there. With the whole video at hand, ``link_tracks`` puts those pieces back together:

0. Side misreads: the detector follows a hand from frame to frame (its ``chain`` number), and a hand
   cannot change side. Within one chain, a run of at most MISREAD_FRAMES frames whose side is not the
   side of most of the chain's frames is that hand with its side misread (hands that come out from
   behind something are often called the wrong side for a few frames, and the detector's side
   evidence lags): those frames are dropped (they were fitted as the wrong hand; the temporal solve
   fills short gaps). A longer run is left alone: a chain can slide onto the other hand.
1. Duplicates: a short track (at most SHORT_TRACK frames) that is, in each of its frames, on the
   place of a longer track seen in that frame (boxes overlapping by DUPLICATE_IOU, or centres within
   half a box side) is that hand seen twice: dropped. So is a short track that ends or starts within
   ADJACENT frames of a longer track of the other side, on its place: that hand, its side misread
   in its first or last frames (those frames were fitted as the wrong hand, so they cannot join it).
2. Re-linking: a track is the continuation of an earlier track of the same side that ended before it
   started, when it starts where that hand would be and has its shape. Where: the earlier track's
   last box centre moved on by its velocity over its last VELOCITY_FRAMES frames (for at most
   PREDICT_FRAMES frames: a hand does not keep moving while it is away), with an uncertainty that
   grows with the gap (REACH + REACH_PER_FRAME hand sizes per frame unseen), so that after a long gap
   the position says little; shape: the distance between the two tracks' median betas, in
   SHAPE_SCALE units. Both enter the cost (position in uncertainties, shape in units; squared,
   summed), and each track takes the earlier track of least cost under LINK_COST, earliest tracks
   first, so that a chain of pieces becomes one track.
Sides are settled before this: the detector keeps a tracked hand's side and gives a frame's two hands
one side each (``core.perception.hand_sides``), and the ``Tracker`` links only hands of one side.
"""

from __future__ import annotations

import numpy as np

from .detect import box_iou
from .tracking import Track

MISREAD_FRAMES = 15        # frames: a chain's run of the other side this short is a misread
SHORT_TRACK = 8            # frames: a track this short may be a duplicate of a longer one
DUPLICATE_IOU = 0.3
ADJACENT = 3               # frames between a short misread track and its hand's track
VELOCITY_FRAMES = 5        # frames at a track's end its velocity is measured over
PREDICT_FRAMES = 10        # frames of a gap the hand is assumed to keep moving
REACH = 1.0                # hand sizes: position uncertainty right after the end ...
REACH_PER_FRAME = 0.1      # ... growing by this many hand sizes per frame unseen
SHAPE_SCALE = 1.0          # betas distance counted as one unit of cost
LINK_COST = 9.0            # (position / uncertainty)^2 + (shape / SHAPE_SCALE)^2 below this: one hand


def link_tracks(tracks: list[Track]) -> list[Track]:
    """The tracks of a finished video -> one track per hand (see the module docstring), ordered by
    their first frame. The input tracks are not changed."""
    tracks = [Track(side=t.side, frames=dict(t.frames), last_box=t.last_box, last_frame=t.last_frame)
              for t in sorted(tracks, key=_first) if t.frames]
    misread = side_misreads([(f, t.side, hand.chain) for t in tracks for f, hand in t.frames.items()])
    for t in tracks:
        t.frames = {f: hand for f, hand in t.frames.items() if (f, hand.chain) not in misread}
    tracks = [t for t in tracks if t.frames]
    tracks = [t for t in tracks if not _duplicate(t, tracks)]
    linked: list[Track] = []
    for track in tracks:
        ended = [t for t in linked if t.side == track.side and _last(t) < _first(track)]
        costs = [link_cost(t, track) for t in ended]
        if costs and min(costs) < LINK_COST:
            earlier = ended[int(np.argmin(costs))]
            earlier.frames.update(track.frames)
            earlier.last_box, earlier.last_frame = track.last_box, track.last_frame
        else:
            linked.append(track)
    return linked


def side_misreads(frames: list[tuple[int, str, int]]) -> set[tuple[int, int]]:
    """[(frame, side, chain)] of a video's hands -> the (frame, chain) pairs whose side is misread: in a
    chain (chain numbers < 0 are none), runs of at most MISREAD_FRAMES consecutive frames of the side
    that has fewer frames in it (no side has more: none)."""
    chains: dict[int, list[tuple[int, str]]] = {}
    for frame, side, chain in frames:
        if chain >= 0:
            chains.setdefault(chain, []).append((frame, side))
    out = set()
    for chain, seen in chains.items():
        seen.sort()
        counts = {s: sum(side == s for _, side in seen) for s in ("left", "right")}
        if counts["left"] == counts["right"]:
            continue
        minority = min(counts, key=counts.get)
        run: list[int] = []
        for frame, side in seen + [(None, None)]:
            if side == minority:
                run.append(frame)
                continue
            if 0 < len(run) <= MISREAD_FRAMES:
                out.update((f, chain) for f in run)
            run = []
    return out


def link_cost(earlier: Track, later: Track) -> float:
    """How unlike one hand two tracks of a side are, ``earlier`` ending before ``later`` starts:
    (distance of ``later``'s first box centre from where ``earlier``'s hand would be / its
    uncertainty)^2 + (median betas distance / SHAPE_SCALE)^2."""
    gap = _first(later) - _last(earlier)
    ends = sorted(earlier.frames)[-VELOCITY_FRAMES:]
    centres = np.stack([_centre(earlier.frames[f].box) for f in ends])               # (n, 2) pixels
    velocity = np.polyfit(ends, centres, 1)[0] if len(ends) > 1 else np.zeros(2)   # (2,) pixels per frame
    predicted = centres[-1] + velocity * min(gap, PREDICT_FRAMES)
    first = later.frames[_first(later)]
    size = max(_size(earlier.frames[ends[-1]].box), _size(first.box), 1.0)
    reach = size * (REACH + REACH_PER_FRAME * gap)
    position = np.linalg.norm(_centre(first.box) - predicted) / reach
    shape = np.linalg.norm(_median_betas(earlier) - _median_betas(later)) / SHAPE_SCALE
    return float(position ** 2 + shape ** 2)


def _duplicate(track: Track, tracks: list[Track]) -> bool:
    """Whether a short track is, in every frame it has, on the place of a longer track's hand, or is
    a longer track's hand of the other side misread just before or after it."""
    if len(track.frames) > SHORT_TRACK:
        return False
    others = [t for t in tracks if t is not track and len(t.frames) > len(track.frames)]
    if any(all(f in o.frames and _same_place(hand.box, o.frames[f].box) for f, hand in track.frames.items())
           for o in others):
        return True
    first, last = track.frames[_first(track)], track.frames[_last(track)]
    return any(o.side != track.side and (
        (0 < _first(o) - _last(track) <= ADJACENT and _same_place(last.box, o.frames[_first(o)].box)) or
        (0 < _first(track) - _last(o) <= ADJACENT and _same_place(first.box, o.frames[_last(o)].box)))
        for o in others)


def _same_place(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two (4,) boxes hold one hand: IoU >= DUPLICATE_IOU or centres within half a box side."""
    return box_iou(a, b) >= DUPLICATE_IOU or np.linalg.norm(_centre(a) - _centre(b)) < 0.5 * min(_size(a), _size(b))


def _centre(box: np.ndarray) -> np.ndarray:
    return (np.asarray(box[:2], np.float64) + np.asarray(box[2:], np.float64)) / 2


def _size(box: np.ndarray) -> float:
    return float(max(box[2] - box[0], box[3] - box[1]))


def _median_betas(track: Track) -> np.ndarray:
    return np.median(np.stack([h.betas for h in track.frames.values()]), axis=0)


def _first(track: Track) -> int:
    return min(track.frames)


def _last(track: Track) -> int:
    return max(track.frames)
