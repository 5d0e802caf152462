"""Video chunks before the fit (core/engine/chunk_chains.py): a chain's misread side is settled, and a
hand found anew is looked for in the frames before its first detection."""

import numpy as np

from core.engine.chunk_chains import ChunkChains, look_back, settle_sides
from core.engine.detect import Detection


def _hand(centre, side="right", chain=3, size=40.0, source="mediapipe") -> Detection:
    """A detection whose 21 landmarks fill a size x size box at ``centre``, wrist at the bottom."""
    cx, cy = centre
    points = np.stack([np.linspace(cx - size / 2, cx + size / 2, 21), np.linspace(cy + size / 2, cy - size / 2, 21)], 1)
    points[0], points[9] = [cx, cy + size / 2], [cx, cy - size / 4]
    box = np.concatenate([points.min(0), points.max(0)])
    return Detection(box=box, side=side, score=0.9, keypoints_2d=points, source=source, chain=chain,
                     tracked_region=object(), seen=object())


def test_a_chains_short_misread_run_takes_the_chains_side_before_the_fit():
    frames = list(range(10))
    sides = ["left", "left"] + ["right"] * 8                 # a hand come into view called left for 2 frames
    detections = [[_hand((100.0 + 5 * f, 200.0), side)] for f, side in zip(frames, sides)]
    detections[4].append(_hand((400.0, 200.0), "left", chain=-1))      # no chain: left alone
    history: dict = {}
    settled = settle_sides(frames, detections, history)
    assert [found[0].side for found in settled] == ["right"] * 10
    assert settled[0][0].tracked_region is None and settled[0][0].seen is None   # cut for the old side: not reused
    assert settled[0][0].score == 0.5                                         # 1 - 0.9, at least SIDE_SURE
    assert settled[5][0].tracked_region is detections[5][0].tracked_region     # unchanged detections kept as they are
    assert settled[4][1].side == "left"
    assert [s for _, s, _ in history[3]] == sides and -1 not in history       # as the detector called them
    # the next chunk remembers: a left run of chain 3 that ends inside the chunk is still a misread
    more = settle_sides([10, 11, 12, 13], [[_hand((150.0, 200.0), "left")]] * 3 + [[_hand((150.0, 200.0))]], history)
    assert [found[0].side for found in more] == ["right"] * 4


def test_a_run_that_reaches_the_chunks_end_waits_and_a_long_one_is_no_misread():
    history: dict = {}
    first = settle_sides(list(range(30)), [[_hand((100.0, 200.0), "right" if f < 20 else "left")] for f in range(30)], history)
    assert [found[0].side for found in first][20:] == ["left"] * 10      # how long it lasts is not known yet
    second = settle_sides(list(range(30, 40)), [[_hand((100.0, 200.0), "left")] for _ in range(10)], history)
    assert [found[0].side for found in second] == ["left"] * 10          # 20 frames of left: the chain slid, no misread


def _looker(truth_centres: dict, reach: float = 20.0):
    """A stand-in for the landmark model: frame f's image holds f in its first pixel; the hand of frame
    f (truth_centres[f], absent: no hand) is found when the window's centre is within ``reach`` px."""
    calls = []

    def look(rgb, window):
        f = int(rgb[0, 0, 0])
        calls.append(f)
        centre = truth_centres.get(f)
        if centre is None or np.hypot(window.cx - centre[0], window.cy - centre[1]) > reach:
            return None
        return _hand(centre, "left", chain=-1, source="sweep")    # the model's own side call and no chain
    return look, calls


def test_a_new_chain_is_looked_for_in_the_frames_before_its_first():
    truth = {f: (100.0 + 12 * f, 200.0) for f in range(2, 10)}         # the hand is in view from frame 2, moving right
    rgbs = [np.full((4, 4, 3), f, np.uint8) for f in range(10)]
    detections = [[] for _ in range(10)]
    for f in range(5, 10):                                             # the detector finds it from frame 5
        detections[f] = [_hand(truth[f], "right", chain=7)]
    look, calls = _looker(truth)
    out = look_back(rgbs, detections, set(), look)
    found = [f for f in range(10) if out[f]]
    assert found == list(range(2, 10))                                 # frames 2-4 found looking back, then no hand
    assert calls == [4, 3, 2, 1]
    for f in (2, 3, 4):
        (d,) = out[f]
        assert (d.side, d.chain, d.source) == ("right", 7, "back")     # the chain's side and number
        np.testing.assert_allclose(d.box, _hand(truth[f]).box)                # where the hand truly is
    # a chain already seen in an earlier chunk is not looked back for, nor is a hand another detection holds
    look, calls = _looker(truth)
    again = look_back(rgbs, detections, {7}, look)
    assert [len(found) for found in again] == [len(found) for found in detections] and calls == []
    blocked = [list(found) for found in detections]
    blocked[4] = [_hand(truth[4], "left", chain=2)]                    # the other hand, in front, in frame 4
    look, calls = _looker(truth)
    out = look_back(rgbs, blocked, {2}, look)
    assert [len(found) for found in out[:5]] == [0, 0, 0, 0, 1] and calls == [4]
    # at most ``depth`` frames back
    look, calls = _looker(truth)
    out = look_back(rgbs, detections, set(), look, depth=2)
    assert [f for f in range(10) if out[f]] == list(range(3, 10)) and calls == [4, 3]


def test_chunk_chains_looks_back_only_within_a_chunk_and_settles_first():
    truth = {f: (100.0 + 12 * f, 200.0) for f in range(0, 6)}
    look, calls = _looker(truth)
    chains = ChunkChains(look)
    rgbs = [np.full((4, 4, 3), f, np.uint8) for f in range(6)]
    first = chains([0, 1, 2], rgbs[:3], [[], [], []])
    second = chains([3, 4, 5], rgbs[3:], [[_hand(truth[3], "left", chain=9)], [_hand(truth[4], "right", chain=9)],
                                          [_hand(truth[5], "right", chain=9)]])
    assert first == [[], [], []] and calls == []                     # its first frame opens the chunk: nothing before
    assert [found[0].side for found in second] == ["right"] * 3


def test_a_misread_is_not_settled_onto_a_side_the_frame_already_has():
    frames = list(range(6))
    detections = [[_hand((100.0, 200.0), "right")] for _ in frames]
    detections[3] = [_hand((300.0, 200.0), "left"), _hand((100.0, 200.0), "right", chain=4)]   # chain 3 slid onto the left hand
    settled = settle_sides(frames, detections, {})
    assert [d.side for d in settled[3]] == ["left", "right"]
