"""Every hand in photos of people (issue 18): people first (person detector, body landmarks, hand
re-crop), palms on the photo and its tiles, one result per hand, each with its person.

Geometry and merging are checked against independent computations; the body landmarks against
MediaPipe Pose itself; recall against hands annotated by eye in tests/data/hands_in_photos.json (the
photos are read from ../shared/real_images and the test skips without them); false hands on 27
photos without hands made here (bench.hand_recall.photos_without_hands). The full scoring, with
MediaPipe Hands alone beside it and time per photo, is ``python -m bench.hand_recall --mediapipe``.
"""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np
import pytest

from bench.hand_recall import annotations, match, photos_without_hands, read_rgb, score
from core.perception.hand_finder import FoundHand, _surest, one_per_hand, side_from_pose
from core.perception.hand_landmarker import Hand
from core.perception.people import (Person, alignment_region, hand_region_from_pose, one_per_person,
                                    refine_from_heatmap, region_from_recrop)
from core.perception.pose_hints import body_size, face_box, on_face, on_wrist, wrist_owner
from core.perception.regions import Region
from core.perception.tiles import MIN_TILE_SIDE, photo_tiles

from .conftest import REAL_IMAGES

HAVE_PHOTOS = os.path.isdir(os.path.join(REAL_IMAGES, "people"))
# measured on the annotated photos (python -m bench.hand_recall --mediapipe, 2026-11-30): handcap 36 of
# 45 hands with the side right (29 before pose_hints), MediaPipe Hands alone 15; the test allows one hand of slack
HANDCAP_FOUND, MEDIAPIPE_FOUND = 36, 15


# ----------------------------------------------------------------------------- geometry

def _corners(region: Region) -> np.ndarray:
    """(4, 2) corners of a region: its local (+-0.5, +-0.5) mapped to the image."""
    return region.to_image(np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float64))


@pytest.mark.parametrize("angle_deg", [0, 30, 90, 160, -45, -120])
def test_alignment_region_centre_size_and_up(angle_deg):
    centre = np.array([200.0, 150.0])
    direction = np.array([math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))])
    region = alignment_region(centre, centre + 40 * direction, math.pi / 2)
    assert (region.cx, region.cy) == (200.0, 150.0) and math.isclose(region.width, 80) and region.width == region.height
    # the crop's "up" (local y decreasing) points from the centre to the scale point
    up = region.to_image(np.array([[0.5, 0.0]]))[0] - centre
    np.testing.assert_allclose(up / np.linalg.norm(up), direction, atol=1e-9)
    down = alignment_region(centre, centre + 40 * direction, -math.pi / 2)         # the re-crop's convention
    np.testing.assert_allclose((down.to_image(np.array([[0.5, 1.0]]))[0] - centre) / 40, direction, atol=1e-9)


def test_hand_region_from_pose_follows_the_hand():
    wrist, index, pinky = np.array([100.0, 300.0]), np.array([130.0, 240.0]), np.array([100.0, 240.0])
    region = hand_region_from_pose(wrist, pinky, index)
    middle = (2 * index + pinky) / 3                                    # (120, 240): the guessed middle finger
    raw_side = 2 * np.linalg.norm(middle - wrist)
    side = raw_side * 2.7
    assert math.isclose(region.width, side) and math.isclose(region.height, side)
    up = (middle - wrist) / np.linalg.norm(middle - wrist)
    centre = middle + 0.1 * raw_side * up              # moved 0.1 of its unscaled side toward the fingers
    np.testing.assert_allclose([region.cx, region.cy], centre, atol=1e-9)
    top = region.to_image(np.array([[0.5, 0.0]]))[0]                   # the crop's top edge lies toward the fingers
    np.testing.assert_allclose((top - centre) / np.linalg.norm(top - centre), up, atol=1e-9)


def test_region_from_recrop_points():
    centre, scale_point = np.array([50.0, 60.0]), np.array([50.0, 80.0])   # 20 px below: hand points up
    region = region_from_recrop(centre, scale_point)
    assert math.isclose(region.rotation, 0.0, abs_tol=1e-12) and math.isclose(region.width, 40.0)
    np.testing.assert_allclose([region.cx, region.cy], [50.0, 60.0 - 4.0])    # -0.1 of its side, upward


def test_refine_from_heatmap_takes_the_weighted_mean_cell():
    heatmap = np.full((64, 64, 2), -20.0)
    heatmap[30, 40, 0], heatmap[30, 41, 0] = 5.0, 5.0                  # landmark 0: two hot cells
    heatmap[10, 10, 1] = -1.0                                           # landmark 1: nothing confident
    points = np.array([[40.2 / 64, 30.5 / 64], [10.0 / 64, 10.0 / 64]])
    out = refine_from_heatmap(points, heatmap)
    np.testing.assert_allclose(out[0], [40.5 / 64, 30.0 / 64], atol=1e-6)  # cell indices, no +0.5 (MediaPipe)
    np.testing.assert_allclose(out[1], points[1])                          # kept: max sigmoid < 0.5


def test_tiles_cover_the_photo_and_overlap():
    for height, width in [(480, 640), (1600, 1182), (218, 640)]:
        tiles = photo_tiles(height, width)
        side = round(0.5 * min(height, width))
        if side < MIN_TILE_SIDE:
            assert tiles == []
            continue
        assert all(t.side == side and t.x0 >= 0 and t.y0 >= 0 and t.x0 + side <= width and t.y0 + side <= height
                   for t in tiles)
        covered = np.zeros((height, width), bool)
        for t in tiles:
            covered[t.y0:t.y0 + side, t.x0:t.x0 + side] = True
        assert covered.all()
        xs = sorted({t.x0 for t in tiles})
        assert all(b - a <= side * (2 / 3) + 1 for a, b in zip(xs, xs[1:]))    # neighbours share >= a third


# ----------------------------------------------------------------------------- merging

def _hand(x0, y0, size, side="right", presence=0.9, seed=0) -> Hand:
    points = np.array([[x0 + size * u, y0 + size * v] for u, v in np.random.default_rng(seed).random((21, 2))])
    points[0], points[1] = [x0, y0], [x0 + size, y0 + size]
    return Hand(landmarks=np.concatenate([points, np.zeros((21, 1))], 1), world=np.zeros((21, 3)),
                presence=presence, right=0.9 if side == "right" else 0.1, region=Region(0, 0, 1, 1))


def test_one_per_hand_keeps_the_best_with_its_person():
    finds = [FoundHand(_hand(100, 100, 40, presence=0.7), person=2, source="person"),
             FoundHand(_hand(104, 102, 40, presence=0.95), person=-1, source="tile"),     # the same hand
             FoundHand(_hand(300, 100, 40, presence=0.8), person=-1, source="palm"),      # another hand
             FoundHand(_hand(110, 110, 15, "right", 0.6), person=-1, source="tile"),      # inside the first, same side
             FoundHand(_hand(122, 122, 15, "left", 0.6, seed=3), person=-1, source="tile")]  # inside, other side: kept
    kept = one_per_hand(finds)
    assert len(kept) == 3
    best = next(f for f in kept if f.hand.presence == 0.95)
    assert best.person == 2 and best.source == "tile"
    assert any(f.hand.side == "left" for f in kept)
    # one hand read as a right and as a left hand: wrist and middle finger in place, thumb and pinky swapped
    right, left = _hand(500, 100, 60, "right", 0.8), _hand(500, 100, 60, "left", 0.7)
    axis, others = [0, 9, 10, 11, 12], [i for i in range(21) if i not in (0, 9, 10, 11, 12)]
    for hand, x in ((right, 530.0), (left, 440.0)):
        hand.landmarks[axis, :2] = np.stack([np.full(5, 500.0), np.linspace(160, 100, 5)], 1)
        hand.landmarks[others, :2] = np.stack([np.linspace(x, x + 30, 16), np.linspace(100, 160, 16)], 1)
    assert len(one_per_hand([FoundHand(right), FoundHand(left)])) == 1          # boxes apart, the palm axis shared
    # a weak find (presence <= 0.5) inside a surer one is a part of that hand, whatever its side
    weak = FoundHand(_hand(122, 122, 15, "left", 0.3, seed=3), person=-1, source="person")
    assert len(one_per_hand([finds[0], weak])) == 1


def test_one_hand_read_twice_takes_the_landmarks_of_the_surest_find_and_the_surest_side():
    unsure_right = dataclasses.replace(_hand(100, 100, 40, "right", 0.95), right=0.55)   # surest hand, unsure side
    sure_left = _hand(103, 101, 40, "left", 0.9, seed=1)                                   # right = 0.1: surely left
    (kept,) = one_per_hand([FoundHand(unsure_right), FoundHand(sure_left)])
    assert kept.hand.side == "left" and kept.hand.right == 0.1
    np.testing.assert_array_equal(kept.hand.landmarks, unsure_right.landmarks)


def test_one_per_person_drops_a_person_found_twice():
    rng = np.random.default_rng(1)
    body = rng.random((33, 3)) * [200, 400, 1] + [100, 50, 0]

    def person(points):
        return Person(score=0.9, region=Region(0, 0, 1, 1), landmarks=points, visibility=np.ones(33), presence=1.0)
    again = body + [3.0, -2.0, 0.0]                                     # a few pixels off: the same person
    other = body + [400.0, 0.0, 0.0]
    kept = one_per_person([person(body), person(again), person(other)])
    assert len(kept) == 2 and kept[0].landmarks is body and kept[1].landmarks is other


# ----------------------------------------------------------------------------- what the pose says

def _person(left_wrist, right_wrist, score=0.9, visibility=0.9, face_centre=(500.0, 100.0)) -> Person:
    """A person whose only landmarks that matter: wrists (15, 16), a 40 x 30 px face (0-10), and
    shoulders and hips (11, 12, 23, 24) making a torso 200 px long, 100 px wide."""
    points = np.zeros((33, 3))
    points[:, :2] = [1000.0, 1000.0]
    points[[11, 12, 23, 24], :2] = [[150.0, 150.0], [250.0, 150.0], [150.0, 350.0], [250.0, 350.0]]
    points[15, :2], points[16, :2] = left_wrist, right_wrist
    fx, fy = face_centre
    points[:11, :2] = [[fx + dx, fy + dy] for dx, dy in
                       zip(np.linspace(-20, 20, 11), [-15, -10, -5, 0, 5, 10, 15, 15, -15, 0, 0])]
    return Person(score=score, region=Region(0, 0, 1, 1), landmarks=points, visibility=np.full(33, visibility), presence=1.0)


def _hand_at(wrist, size=40.0, side="right", presence=0.9, right=None) -> Hand:
    """A hand whose landmark 0 is ``wrist`` and whose box is ``size`` px, fingers up."""
    rng = np.random.default_rng(5)
    points = np.asarray(wrist, np.float64) + rng.random((21, 2)) * [size, -size] + [-size / 2, 0]
    points[0], points[1], points[2] = wrist, np.add(wrist, [-size / 2, -size]), np.add(wrist, [size / 2, -size])
    p = (0.9 if side == "right" else 0.1) if right is None else right
    return Hand(landmarks=np.concatenate([points, np.zeros((21, 1))], 1), world=np.zeros((21, 3)),
                presence=presence, right=p, region=Region(0, 0, 1, 1))


def test_wrist_owner_is_the_nearest_wrist_unless_the_other_side_is_as_near():
    people = [_person((100.0, 300.0), (300.0, 300.0)), _person((600.0, 300.0), (700.0, 300.0))]
    hand = _hand_at((110.0, 305.0)).landmarks                    # 11 px from person 0's left wrist, size 40
    assert wrist_owner(hand, people) == (0, "left")
    assert on_wrist(hand, people[0], "left") and not on_wrist(hand, people[0], "right")
    assert wrist_owner(_hand_at((200.0, 300.0)).landmarks, people) is None       # 100 px from any: > 0.6 x 40
    # a right wrist (of another person) about as near as the left one: no owner
    close = [_person((100.0, 300.0), (900.0, 900.0)), _person((800.0, 800.0), (122.0, 300.0))]
    assert wrist_owner(_hand_at((110.0, 300.0)).landmarks, close) is None
    # ... unless clearly farther (nearest / farther < SIDE_MARGIN)
    close[1].landmarks[16, :2] = (140.0, 300.0)
    assert wrist_owner(_hand_at((105.0, 300.0)).landmarks, close) == (0, "left")
    # weak detections (score < 0.5) and hidden wrists vouch for nothing
    assert wrist_owner(hand, [_person((100.0, 300.0), (300.0, 300.0), score=0.4)]) is None
    assert wrist_owner(hand, [_person((100.0, 300.0), (300.0, 300.0), visibility=0.05)]) is None
    assert not on_wrist(hand, _person((100.0, 300.0), (300.0, 300.0), score=0.4), "left")


def test_a_find_on_a_face_is_dropped_unless_it_ends_at_a_wrist():
    person = _person((100.0, 300.0), (300.0, 300.0), face_centre=(500.0, 100.0))
    np.testing.assert_allclose(face_box(person), [480, 85, 520, 115])
    nose = _hand_at((495.0, 90.0), size=20.0).landmarks           # centre (495, 80) ... inside the face box
    nose[:, 1] += 12                                               # centre now (495, ~92)
    assert on_face(nose, [person])
    person.landmarks[16, :2] = (495.0, 102.0)                      # the right wrist right there: a hand framing the face
    assert not on_face(nose, [person])
    assert not on_face(_hand_at((100.0, 300.0)).landmarks, [person])            # far from the face
    assert not on_face(nose, [_person((100.0, 300.0), (300.0, 300.0), score=0.3)])   # a weak person has no face


def test_a_person_speaks_only_for_hands_their_body_could_have():
    person = _person((100.0, 300.0), (300.0, 300.0))              # body_size 200 px (the torso)
    assert body_size(person) == pytest.approx(200.0)
    assert wrist_owner(_hand_at((105.0, 300.0), size=200.0).landmarks, [person]) == (0, "left")   # 1.0 x body
    giant = _hand_at((105.0, 300.0), size=260.0).landmarks          # 1.3 x body: in front of the camera, not theirs
    assert wrist_owner(giant, [person]) is None and not on_wrist(giant, person, "left")
    # a hand bigger than the body over its face is a close-up hand, not the face read as a hand
    over_face = _hand_at((500.0, 230.0), size=260.0).landmarks
    over_face[:, :2] += [500.0, 100.0] - over_face[:, :2].mean(0)            # centred on the face
    assert not on_face(over_face, [person])
    shrunk = over_face.copy()                                                # the same, 100 px
    shrunk[:, :2] = (over_face[:, :2] - [500.0, 100.0]) * (100.0 / 260.0) + [500.0, 100.0]
    assert on_face(shrunk, [person])


def test_a_piece_of_a_hand_is_dropped_whatever_its_side():
    whole = FoundHand(_hand_at((300.0, 500.0), 180.0, "left", 0.95))        # box 210..390 x 320..500
    tip = FoundHand(_hand_at((330.0, 360.0), 40.0, "right", 0.99), person=0, source="person", owner=(0, "right"))
    assert one_per_hand([whole, tip]) == [whole]                    # a fingertip read as a hand, surer than the hand
    elsewhere = dataclasses.replace(tip, hand=_hand_at((600.0, 360.0), 40.0, "right", 0.99))
    assert len(one_per_hand([whole, elsewhere])) == 2               # a small hand beside it is a hand
    second = FoundHand(_hand_at((300.0, 450.0), 70.0, "right", 0.9))      # over a third of its size: two hands
    assert len(one_per_hand([whole, second])) == 2
    # a weak large find (it may yet be dropped as a face or as unstable) takes no real hand with it
    weak_whole = dataclasses.replace(whole, hand=dataclasses.replace(whole.hand, presence=0.3))
    (kept,) = one_per_hand([weak_whole, tip])
    np.testing.assert_array_equal(kept.hand.landmarks, tip.hand.landmarks)     # the weak one is merged into it
    assert len(one_per_hand([dataclasses.replace(weak_whole, owner=(1, "left")), tip])) == 1   # on a wrist: sure


def test_a_region_looked_at_in_other_sizes_keeps_its_surest_clear_look():
    own, halved, bigger = (dataclasses.replace(_hand_at((100.0, 300.0)), presence=p) for p in (0.2, 0.45, 0.8))
    assert _surest([(1.0, own), (0.5, halved), (1.5, None)], clear=0.5) is own        # 0.45 at another size: not clear
    assert _surest([(1.0, own), (0.5, halved), (1.5, bigger)], clear=0.5) is bigger
    assert _surest([(1.0, None), (0.5, halved)], clear=0.5) is None


def test_side_from_pose_only_where_the_network_read_the_hand_both_ways():
    unsure = FoundHand(_hand_at((100.0, 300.0), right=0.8), owner=(2, "left"))       # read right, 0.8
    kept = side_from_pose(unsure, {"right"})                       # read one way only: the network's side
    assert kept.hand.side == "right" and kept.person == 2
    flipped = side_from_pose(unsure, {"right", "left"})            # read both ways: the pose's side
    assert flipped.hand.side == "left" and math.isclose(flipped.hand.side_score, 0.8) and flipped.person == 2
    sure = FoundHand(_hand_at((100.0, 300.0), right=0.95), owner=(2, "left"))
    assert side_from_pose(sure, {"right", "left"}).hand.side == "right"     # the network is sure
    assert side_from_pose(FoundHand(_hand_at((1.0, 1.0), right=0.8)), {"left", "right"}).hand.side == "right"


def test_one_person_two_wrists_are_two_hands_however_they_overlap():
    a = FoundHand(_hand_at((100.0, 300.0), 60, "right", 0.95), person=0, source="person", owner=(0, "right"))
    b = FoundHand(_hand_at((110.0, 305.0), 60, "left", 0.8), person=0, source="person", owner=(0, "left"))
    assert len(one_per_hand([a, b])) == 2
    c = dataclasses.replace(b, owner=(1, "left"))                  # another person's wrist: one hand (the usual rules)
    assert len(one_per_hand([a, c])) == 1
    d = dataclasses.replace(b, owner=None)
    merged = one_per_hand([a, d])
    assert len(merged) == 1 and merged[0].owner == (0, "right")


def test_scoring_matches_each_find_once_and_checks_sides():
    truth = [(np.array([10.0, 10.0]), "right", "a"), (np.array([12.0, 12.0]), None, "b"), (np.array([90.0, 90.0]), "left", "c")]
    finds = [(np.array([0.0, 0.0, 20.0, 20.0]), "right"), (np.array([80.0, 80.0, 100.0, 100.0]), "right")]
    assert match(truth, finds) == [0, -1, -1]                         # one find per hand; "c" has the wrong side
    s = score({"p": finds}, {"p": truth})
    assert (s["hands"], s["found"], s["unmatched_finds"]) == (3, 1, 1)


# ----------------------------------------------------------------------------- against MediaPipe and by eye

@pytest.fixture(scope="module")
def detector():
    from core.engine.detect import HandDetector
    with HandDetector(max_hands=None) as d:
        yield d


@pytest.mark.skipif(not HAVE_PHOTOS, reason="../shared/real_images is not here")
def test_body_landmarks_match_mediapipe_pose():
    """The best person's body landmarks beside MediaPipe Pose's own (static image, full model): the same
    graph around the same networks, so they agree to about a pixel (the heatmap refinement's 7x7 windows
    can move a landmark by a few pixels where MediaPipe's crop differs in its last bits)."""
    mp = pytest.importorskip("mediapipe")
    from core.perception.hand_finder import load_people_networks
    from core.perception.people import PersonFinder
    finder = PersonFinder(*load_people_networks("cpu"), min_score=0.5, tiles=False)     # MediaPipe Pose's graph
    compared = 0
    with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1) as pose:
        for name in ("people/COCO_val2014_000000000241.jpg", "people/COCO_val2014_000000000338.jpg",
                     "in_the_wild/wild_1.jpg"):
            rgb = read_rgb(os.path.join(REAL_IMAGES, name))
            result = pose.process(rgb)
            people = finder.people(rgb, finder.detect(rgb)[:1])
            assert (result.pose_landmarks is None) == (not people), name
            if not people:
                continue
            h, w = rgb.shape[:2]
            reference = np.array([[p.x * w, p.y * h] for p in result.pose_landmarks.landmark])
            visibility = np.array([p.visibility for p in result.pose_landmarks.landmark])
            distance = np.linalg.norm(people[0].landmarks[:, :2] - reference, axis=1)
            seen = visibility > 0.5                    # hidden landmarks are guesses: their heatmaps are flat
            assert np.median(distance) < 1.0 and distance[seen].max() < 8.0, (name, distance.round(2))
            assert np.abs(people[0].visibility - visibility).max() < 0.01
            compared += 1
    assert compared >= 2


@pytest.mark.skipif(not HAVE_PHOTOS, reason="../shared/real_images is not here")
def test_finds_the_annotated_hands_in_photos_of_people(detector):
    truth = annotations()
    assert len(truth) == 25 and sum(len(h) for h in truth.values()) >= 40
    found = {}
    for name in truth:
        detections = detector.detect(read_rgb(os.path.join(REAL_IMAGES, name)), search=True)
        found[name] = [(d.box, d.side) for d in detections]
        assert all(d.person >= -1 for d in detections)
    result = score(found, truth)
    lines = [f"{n}: {d['found']}/{d['hands']}, missed {d['missed']}" for n, d in result["photos"].items()]
    assert result["found"] >= HANDCAP_FOUND - 1, "\n".join(lines)
    assert result["found"] > MEDIAPIPE_FOUND


def test_no_hands_in_photos_without_hands(detector):
    """The photo finder alone (people, palms, tiles; not the close-up fallback passes, which
    tests/test_detect_recall.py checks) on 27 photos without hands: at most one false hand."""
    photos = photos_without_hands()
    assert len(photos) >= 20
    false = {}
    for name, rgb in photos.items():
        found = detector.detect(rgb, search=False)
        if found:
            false[name] = [(d.box.round().tolist(), d.side, d.source) for d in found]
    assert sum(len(v) for v in false.values()) <= 1, false


# ----------------------------------------------------------------------------- capture file and Blender names

def test_capture_keeps_each_tracks_person(tmp_path, open_right):
    import zipfile

    from blender_addon.capture_format import CaptureError, load_capture, save_capture

    from .test_capture_format import make_capture
    capture = make_capture(open_right)
    capture.tracks[0].person = 3
    path = str(tmp_path / "c.npz")
    save_capture(capture, path)
    with np.load(path) as npz:
        assert int(npz["track0/person"]) == 3 and npz["track0/person"].dtype == np.int32 and int(npz["version"]) == 1
    assert load_capture(path).tracks[0].person == 3
    # a file written before the key existed (no track0/person) reads as -1: not known
    old = str(tmp_path / "old.npz")
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files if k != "track0/person"}
    np.savez(old, **arrays)
    assert load_capture(old).tracks[0].person == -1
    arrays["track0/person"] = np.array(-2, np.int32)
    np.savez(old, **arrays)
    with pytest.raises(CaptureError, match="person"):
        load_capture(old)
    assert zipfile.is_zipfile(path)


def test_rig_names_carry_the_person_and_side():
    from blender_addon.naming import rig_names
    assert rig_names("party", 3, "left", person=1) == ("party person1 hand3.L rig", "party person1 hand3.L")
    assert rig_names("party", 0, "right") == ("party hand0.R rig", "party hand0.R")
    names = {rig_names("party", t, side, person)[0] for t, (side, person) in enumerate([("left", 0), ("left", 0), ("right", 1)])}
    assert len(names) == 3                                  # one rig per hand, never two of one name
