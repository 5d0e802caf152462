"""Video identity (issue 19): the online Tracker, the offline re-linking of its tracks
(core/engine/track_links.py) and the detector's side evidence (core/perception/hand_sides.py), on
synthetic hand sequences (no rendering, no networks except the perception tests' fakes)."""

import numpy as np
import pytest

from core.engine.pipeline import HandEstimate
from core.engine.track_links import link_tracks
from core.engine.tracking import MAX_GAP, Tracker
from core.perception.hand_landmarker import HandLandmarker
from core.perception.hand_sides import one_of_each_side, side_evidence
from core.perception.hand_tracker import HandTracker
from core.perception.palm_finder import PalmFinder
from core.perception.regions import region_from_landmarks
from tests.test_perception_pipeline import FakeLandmarkNet, FakePalmNet

SIZE = 100.0     # pixels, the hands' box side


def _hand(side: str, x: float, y: float = 240.0, betas=None) -> HandEstimate:
    """A hand whose box of side SIZE is centred at (x, y) pixels; ``x`` tags it for the checks."""
    z = np.zeros
    box = np.array([x - SIZE / 2, y - SIZE / 2, x + SIZE / 2, y + SIZE / 2])
    return HandEstimate(side=side, score=0.9, box=box, pose=z((16, 3)), betas=z(10) if betas is None else betas,
                        transl=z(3), joints_3d=z((21, 3)), keypoints_2d=z((21, 2)))


def _run(frames: list[list[HandEstimate]]):
    tracker = Tracker()
    for f, hands in enumerate(frames):
        tracker.update(f, hands)
    return tracker.tracks, link_tracks(tracker.tracks)


def test_a_hand_that_leaves_for_60_frames_and_comes_back_is_one_track():
    rng = np.random.default_rng(0)
    shape = rng.normal(size=10)
    frames = []
    for f in range(140):
        gone = 40 <= f < 100                                   # out of the picture for 60 frames
        x = 300 + 6 * f if f < 40 else 560 - 4 * (f - 100)    # leaves on the right, comes back from there
        frames.append([] if gone else [_hand("right", x, betas=shape + 0.3 * rng.normal(size=10))])
    online, final = _run(frames)
    assert len(online) == 2                                    # the gap is far beyond MAX_GAP ...
    assert 60 > MAX_GAP
    assert len(final) == 1 and final[0].side == "right"        # ... yet one hand
    assert sorted(final[0].frames) == [f for f in range(140) if not 40 <= f < 100]


def test_a_returning_hand_of_another_shape_is_not_linked():
    """The shape check can fail: after a long gap, a right hand of clearly other betas is another person's."""
    frames = [[_hand("right", 300.0, betas=np.zeros(10))] if f < 20 else [] for f in range(80)]
    frames += [[_hand("right", 320.0, betas=np.full(10, 1.5))] for _ in range(20)]
    _, final = _run(frames)
    assert len(final) == 2


def test_two_hands_that_cross_keep_their_tracks():
    """The right hand moves from x = 100 to 540, the left from 540 to 100; the right one passes behind
    the left and is unseen for 10 frames in the middle, coming out beyond it (its box then overlaps
    nothing it had): two tracks, each holding only its own hand's boxes."""
    frames = []
    for f in range(45):
        right_x, left_x = 100 + 10 * f, 540 - 10 * f
        hidden = 17 <= f < 27
        frames.append(([] if hidden else [_hand("right", right_x)]) + [_hand("left", left_x)])
    online, final = _run(frames)
    assert len(online) == 3                                    # the right hand's track broke behind the left
    assert len(final) == 2
    by_side = {t.side: t for t in final}
    for f, hand in by_side["right"].frames.items():
        assert hand.side == "right" and (hand.box[0] + hand.box[2]) / 2 == pytest.approx(100 + 10 * f)
    for f, hand in by_side["left"].frames.items():
        assert (hand.box[0] + hand.box[2]) / 2 == pytest.approx(540 - 10 * f)
    assert len(by_side["right"].frames) == 35 and len(by_side["left"].frames) == 45


def test_a_short_duplicate_over_a_live_track_is_dropped():
    """A second find of the live right hand (shifted by 20 px) for 3 frames, and the hand's side misread
    for its first 2 frames after a return: both are that hand, not new ones."""
    frames = []
    for f in range(40):
        hands = [_hand("right", 200 + 2 * f)]
        if 10 <= f < 13:
            hands.append(_hand("right", 220 + 2 * f))
        frames.append(hands)
    frames += [[] for _ in range(30)]
    frames += [[_hand("left" if f < 2 else "right", 400.0)] for f in range(20)]
    online, final = _run(frames)
    assert len(online) == 4                         # the hand, the duplicate, the misread return, the return
    assert [t.side for t in final] == ["right"]
    assert sorted(final[0].frames) == list(range(40)) + list(range(72, 90))
    assert all((h.box[0] + h.box[2]) / 2 == pytest.approx(200 + 2 * f) for f, h in final[0].frames.items() if f < 40)


def test_two_hands_of_one_frame_get_one_side_each():
    # both leaning right: the weaker one (a new hand called right at 0.7) is the left hand
    tracked, new = side_evidence(0.9, side_evidence(0.9)), side_evidence(0.7)
    settled = one_of_each_side([tracked, new])
    assert settled[0] > 0 and settled[1] < 0 and abs(settled[1]) == pytest.approx(np.log(0.7 / 0.3))
    assert one_of_each_side([2.0, -0.1]) == [2.0, -0.1]          # already one of each
    assert one_of_each_side([-3.0, -0.5])[1] == pytest.approx(0.5)
    assert one_of_each_side([1.0, 2.0, 3.0]) == [1.0, 2.0, 3.0]  # not a pair: left alone


def test_a_tracked_hand_keeps_its_side_through_a_misread_frame():
    """The fake landmark model calls a tracked hand right (0.8 as seen) for 10 frames, then the other
    way (its crop is cut mirrored for a left hand, so the call as seen is flipped back) for one frame:
    the hand stays right; called left for long enough, it turns left."""
    palm_net, landmark_net = FakePalmNet(), FakeLandmarkNet()
    tracker = HandTracker(PalmFinder(palm_net, 0.5), HandLandmarker(landmark_net), max_hands=1, video=True)
    frame = np.full((480, 640, 3), 128, np.uint8)
    for _ in range(10):
        (hand,) = tracker(frame)
        assert hand.side == "right"
    landmark_net.handedness = 0.2                          # one frame called left at 0.8 ...
    (hand,) = tracker(frame)
    assert hand.tracked and hand.side == "right" and hand.seen.handedness == pytest.approx(0.2)
    landmark_net.handedness = 0.8                          # ... then right again
    assert tracker(frame)[0].side == "right"
    sides = []                                             # called left on and on (as a left hand looks:
    for _ in range(30):                                    # 0.2 as it is, 0.8 when cut mirrored)
        landmark_net.handedness = 0.8 if tracker.tracked[0].mirrored else 0.2
        sides.append(tracker(frame)[0].side)
    # evidence 0.9 e + log(1/4) from e = 7.4: below 0 after 5 frames, and it stays left
    assert sides[:4] == ["right"] * 4 and sides[5:] == ["left"] * 25
    # a photo (no tracking) reports each call as it is
    landmark_net.handedness = 0.8
    photo = HandTracker(PalmFinder(palm_net, 0.5), HandLandmarker(landmark_net), max_hands=1, video=False)
    assert photo(frame)[0].right == pytest.approx(0.8)


def test_a_lost_hand_is_looked_for_again_where_it_was_lost():
    """The hand's presence dips under 0.5 for 2 frames while the palm detector sees nothing: the
    landmark model looks in the lost hand's region again and finds it, keeping its side; LOST_FRAMES
    frames after a loss it stops looking there."""
    from core.perception.hand_tracker import LOST_FRAMES
    palm_net, landmark_net = FakePalmNet(), FakeLandmarkNet()
    tracker = HandTracker(PalmFinder(palm_net, 0.5), HandLandmarker(landmark_net), max_hands=1, video=True)
    frame = np.full((480, 640, 3), 128, np.uint8)
    (first,) = tracker(frame)
    palm_net.score = -20.0                                 # no palm from now on
    landmark_net.presence = 0.3
    assert tracker(frame) == [] and tracker(frame) == []
    landmark_net.presence, landmark_net.handedness = 0.9, 0.45     # back, its own call now barely left
    (again,) = tracker(frame)
    assert again.tracked and again.region == region_from_landmarks(first.landmarks[:, :2])
    assert again.side == "right"                          # the evidence of its first frame carried over
    landmark_net.presence = 0.3
    for _ in range(1 + LOST_FRAMES):                      # the frame it is lost in, then LOST_FRAMES looks
        assert tracker(frame) == []
    landmark_net.presence = 0.9
    assert tracker(frame) == []                            # forgotten: only a palm would find it now


def test_two_tracked_regions_on_one_hand_give_one_result():
    """The right hand's region slid onto the left hand (same wrist and middle finger, within SAME_PALM):
    one result, the one from the region it moved least in; a hand of the same place found again in a
    lost hand's old region is dropped too. Hands apart both stay."""
    from core.perception.hand_landmarker import Hand
    from core.perception.regions import Region
    tracker = HandTracker(PalmFinder(FakePalmNet(), 0.5), HandLandmarker(FakeLandmarkNet()), max_hands=2, video=True)
    points = np.concatenate([np.random.default_rng(3).uniform(300, 400, (21, 2)), np.zeros((21, 1))], 1)

    def hand(dx, region_x):
        return Hand(landmarks=points + [dx, 0, 0], world=np.zeros((21, 3)), presence=0.9, right=0.9,
                    region=Region(region_x, 350.0, 200.0, 200.0))

    own, slid = hand(0.0, 350.0), hand(5.0, 290.0)          # 5 px apart: one hand; "slid" moved 65 px in its region
    kept, evidence = tracker._one_per_hand([slid, own], [1.0, 2.0], lost=[])
    assert kept == [own] and evidence == [2.0]
    apart = hand(150.0, 500.0)
    kept, _ = tracker._one_per_hand([own, apart], [1.0, -1.0], lost=[])
    assert kept == [own, apart]
    again = hand(30.0, 380.0)                               # found in a lost region, its box overlapping
    kept, _ = tracker._one_per_hand([again, own], [1.0, 2.0], lost=[again.region])
    assert kept == [own]


def test_after_a_loss_the_palm_detector_looks_on_every_frame_for_a_while():
    """Two hands wanted, one tracked: the palm detector runs every palm_every-th frame, except for
    SEARCH_FRAMES frames after a tracked hand was lost, when it runs on every frame. A hand keeps its
    chain number while it is tracked and gets a new one when the palm detector finds it anew."""
    from core.perception.hand_tracker import LOST_FRAMES, SEARCH_FRAMES
    palm_net, landmark_net = FakePalmNet(), FakeLandmarkNet()
    tracker = HandTracker(PalmFinder(palm_net, 0.5), HandLandmarker(landmark_net), max_hands=2, video=True, palm_every=4)
    frame = np.full((480, 640, 3), 128, np.uint8)
    (first,) = tracker(frame)
    palm_net.score = -20.0                                  # no palm found from now on
    chains = [tracker(frame)[0].chain for _ in range(8)]
    assert chains == [first.chain] * 8 and palm_net.calls == 3     # frame 0, then frames 4 and 8
    landmark_net.presence = 0.1                             # lost (and its region forgotten) ...
    gone = LOST_FRAMES + 1
    assert all(tracker(frame) == [] for _ in range(1 + gone))
    landmark_net.presence, palm_net.score = 0.9, 5.0        # ... and found anew by the palm detector
    (again,) = tracker(frame)
    assert not again.tracked and again.chain != first.chain
    palm_net.score = -20.0
    before = palm_net.calls
    for _ in range(SEARCH_FRAMES - gone - 1):               # tracked again: palms on every frame still
        assert tracker(frame)[0].chain == again.chain
    assert palm_net.calls - before == SEARCH_FRAMES - gone - 1
    before = palm_net.calls
    for _ in range(8):                                      # then every 4th frame again
        tracker(frame)
    assert palm_net.calls - before == 2


def test_a_side_misread_within_one_detector_chain_is_dropped():
    """Two hands cross behind something: each comes out with its side misread for 8 frames, then read
    right; the detector followed each from frame to frame (one chain per hand). The misread frames
    are dropped, so each final track holds one hand only (told apart here by its y position)."""
    def hand(side, x, y, chain):
        h = _hand(side, x, y)
        h.chain = chain
        return h
    frames = []
    for f in range(70):
        hands = []
        if f < 25:                                          # before: right at y 100, left at y 400
            hands = [hand("right", 200 + 4 * f, 100.0, 1), hand("left", 440 - 4 * f, 400.0, 2)]
        elif f >= 30:                                       # after: new chains, first 8 frames misread
            misread = f < 38
            hands = [hand("left" if misread else "right", 320 + 4 * (f - 30), 100.0, 3),
                     hand("right" if misread else "left", 320 - 4 * (f - 30), 400.0, 4)]
        frames.append(hands)
    online, final = _run(frames)
    assert len(final) == 2
    for track in final:
        ys = {float((h.box[1] + h.box[3]) / 2) for h in track.frames.values()}
        assert len(ys) == 1                                 # one hand per track
        assert ys == ({100.0} if track.side == "right" else {400.0})
        assert sorted(track.frames) == list(range(25)) + list(range(38, 70))


def test_side_misreads_are_short_runs_of_a_chains_minority_side():
    from core.engine.track_links import MISREAD_FRAMES, side_misreads
    frames = [(f, "left" if 10 <= f < 15 else "right", 7) for f in range(40)]       # 5 frames misread
    frames += [(f, "left" if f < MISREAD_FRAMES + 1 else "right", 8) for f in range(60)]   # too long a run
    frames += [(f, "left" if f % 2 else "right", 9) for f in range(10)]            # no majority
    frames += [(f, "left" if f == 3 else "right", -1) for f in range(10)]          # no chain
    assert side_misreads(frames) == {(f, 7) for f in range(10, 15)}
