"""Every hand in a photo: people first, then palms, one result per hand.

1. People (``core.perception.people``): every person the person detector finds, their body landmarks,
   and both hands' regions from the wrist, index and pinky landmarks, re-cropped by the hand
   re-crop network. These regions know their person and side, and whether the pose saw the wrist.
2. Palms: the palm detector on the whole photo and on overlapping tiles (``core.perception.tiles``),
   so that hands without a visible body (close-ups, hands cut off at the frame) are found too; each
   palm gives a region (``regions.region_from_palm``); regions of one hand (IoU > 0.5) are merged.
3. The hand landmark network looks in every region of both kinds in one batch. Each find is put on
   the pose wrist it starts at, if any (``owner``, ``core.perception.pose_hints``: a find from a
   person's region that reads that region's side and starts at its wrist is that wrist's; any other
   find is the nearest wrist's where no wrist of the other side is about as near; only people whose
   detection scored >= 0.5 vouch for hands, and only for hands their body could have:
   ``pose_hints.fits_body``). A find holds a hand where its presence passes
   ``min_presence`` (MediaPipe's 0.5), or ``min_presence_person`` where a hand is expected: on a pose
   wrist, or in the region of a visible wrist of a person who vouches (small, holding, gloved,
   half-hidden hands score lower); such a region is also looked at halved and 1.5 times
   (PERSON_REGION_SIZES), its surest look kept. A region that scores under its bar, but not far
   under, gets a second look in the region its own landmarks give (``recentre``).
4. One hand, one result: a find at most a third the size of another and inside its box is a piece of
   that hand (a fingertip read as a tiny hand, often on a wrist the pose put on the fingers of a
   close-up) and is dropped, whatever its side or owner, where the larger is sure (presence over 0.5,
   or on a pose wrist). Then finds whose landmark boxes overlap by
   more than DUPLICATE_IOU, or lie mostly inside one another with the same side (any side for the
   weaker where its presence is under 0.5), or that put the wrist and the middle finger in the same
   place (a hand read once as a left and once as a right hand) are one hand, unless they are on one
   person's two wrists (interlocked or touching hands); the find with the highest presence stays,
   and keeps the person and owner of any find it absorbed, and the side of the find that was surest of
   its side. Where the network read the hand both ways and is unsure (< SIDE_SURE), the owner's side
   wins (``side_from_pose``).
5. What is not a hand is dropped: besides the presence score, a find from a person's pose whose side
   the landmark network calls, with confidence (>= SIDE_CONFLICT), the other way is not that hand;
   a find (not from a pose region) on a face but on no wrist is the face (``pose_hints.on_face``).
   The engine also re-checks the less certain finds that no wrist vouches for in perturbed views
   (``core.engine.detect``).

``HandFinder(...)(rgb) -> [FoundHand]``, best first within each person; pixels of the photo.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Optional

import numpy as np
import torch

from . import load_hand_recrop, load_pose_detector, load_pose_landmarks
from .hand_landmarker import Hand, HandLandmarker, same_palm
from .hand_tracker import load_networks
from .palm_finder import PalmFinder
from .people import HandRegion, Person, PersonFinder
from .pose_hints import fits_body, hand_size, on_face, on_wrist, vouches, wrist_owner
from .regions import Region, merge_regions, region_from_landmarks, region_from_palm
from .ssd import box_iou_matrix
from .tiles import photo_tiles

MIN_PRESENCE = 0.5             # the landmark network's presence score a hand must pass (MediaPipe's) ...
MIN_PRESENCE_PERSON = 0.1      # ... where a hand is expected (on a pose wrist: small, holding, gloved, half-hidden hands)
RECENTRE_FROM = 0.02           # a person's hand scoring at least this gets a second, re-centred look
SIDE_CONFLICT = 0.9            # ... a pose-derived find called the other side this surely is dropped
SIDE_SURE = 0.9                # a hand read both ways takes its pose wrist's side unless the network is this sure
DUPLICATE_IOU = 0.3            # landmark boxes of one hand
DUPLICATE_CONTAINED = 0.7      # ... or the smaller mostly inside the larger, same side
PERSON_REGION_SIZES = (1.0, 0.5, 1.5)   # the hand region of a visible wrist of a person who vouches is looked at as
                                        # cut, halved and 1.5 times (the re-crop's square misjudges small hands
                                        # and hands out of line with the arm)
PART_OF_HAND, PART_SLACK = 1 / 3, 0.1   # a find this small, inside a larger hand's box, is a piece of it
SAME_PALM = 0.25               # ... or wrist and middle finger in the same place, either side (hand sizes)


@dataclasses.dataclass
class FoundHand:
    """One hand of a photo."""

    hand: Hand                 # landmarks (21, 3) px, world (21, 3) m, presence, side, region
    person: int = -1           # index into the people found, -1 when not known
    source: str = "palm"       # "person" (from a person's pose) | "palm" (whole photo) | "tile"
    owner: Optional[tuple[int, str]] = None   # (person, side) of the pose wrist the hand is on (pose_hints)

    def box(self) -> np.ndarray:
        points = self.hand.landmarks[:, :2]
        return np.concatenate([points.min(0), points.max(0)])


@functools.lru_cache(maxsize=None)
def load_people_networks(device: str) -> tuple[torch.nn.Module, torch.nn.Module, torch.nn.Module]:
    """(person detector, body-landmark network, hand re-crop network) on one device, loaded once."""
    return load_pose_detector(device), load_pose_landmarks(device), load_hand_recrop(device)


class HandFinder:
    """``finder(rgb) -> [FoundHand]`` (see the module docstring); ``finder.people_found`` holds the
    people of the last photo.

    palms: a PalmFinder; landmarker: a HandLandmarker (its ``min_presence`` is replaced by
    ``min_presence``); people: a PersonFinder or None (palms only); tiles: also look for palms in
    tiles; max_hands: at most this many (highest presence first), None for all.
    """

    def __init__(self, palms: PalmFinder, landmarker: HandLandmarker, people: Optional[PersonFinder],
                 tiles: bool = True, max_hands: Optional[int] = None, min_presence: float = MIN_PRESENCE,
                 min_presence_person: float = MIN_PRESENCE_PERSON):
        self.palms, self.people, self.tiles, self.max_hands = palms, people, tiles, max_hands
        self.min_presence, self.min_presence_person = float(min_presence), float(min_presence_person)
        self.landmarker = HandLandmarker(landmarker.net, min_presence=min(RECENTRE_FROM, self.min_presence_person) - 1e-6,
                                         batch_size=landmarker.batch_size, bf16=landmarker.bf16)
        self.people_found: list[Person] = []

    @classmethod
    def load(cls, variant: str = "full", device="cpu", min_confidence: float = 0.5, people: bool = True,
             tiles: bool = True, max_hands: Optional[int] = None, bf16: bool = False) -> "HandFinder":
        device = str(torch.device(device))
        palm, landmarks = load_networks(variant, device)
        finder = PersonFinder(*load_people_networks(device)) if people else None
        return cls(PalmFinder(palm, min_confidence), HandLandmarker(landmarks, bf16=bf16), finder, tiles, max_hands)

    def __call__(self, rgb: np.ndarray) -> list[FoundHand]:
        self.people_found = self.people(rgb) if self.people is not None else []
        person_regions = self.people.hand_regions(rgb, self.people_found) if self.people_found else []
        palm_regions, palm_sources = self.palm_regions(rgb)
        looked = self.look(rgb, person_regions, palm_regions)
        finds = []
        for k, hand in enumerate(looked):
            if hand is None:
                continue
            if k < len(person_regions):
                hint = person_regions[k]
                if hand.side != hint.side and hand.side_score >= SIDE_CONFLICT:
                    continue
                owned = hand.side == hint.side and on_wrist(hand.landmarks, self.people_found[hint.person], hint.side)
                owner = (hint.person, hint.side) if owned else wrist_owner(hand.landmarks, self.people_found)
                person = self.people_found[hint.person]
                expected = (hint.visible and vouches(person) and fits_body(hand.landmarks, person)) or owner is not None
                find = FoundHand(hand, hint.person, "person", owner)
            else:
                owner = wrist_owner(hand.landmarks, self.people_found)
                find, expected = FoundHand(hand, -1, palm_sources[k - len(person_regions)], owner), owner is not None
            if hand.presence > (self.min_presence_person if expected else self.min_presence):
                finds.append(find)
        hands = [f for f in one_per_hand(finds) if f.source == "person" or not on_face(f.hand.landmarks, self.people_found)]
        if self.max_hands is not None:
            hands = sorted(hands, key=lambda f: -f.hand.presence)[:self.max_hands]
        return sorted(hands, key=lambda f: (f.person < 0, f.person, float(f.box()[0])))

    def look(self, rgb: np.ndarray, person_regions: list[HandRegion], palm_regions: list[Region]) -> list:
        """The landmark network in every region, one batch: per person region (the surest of its looks
        at PERSON_REGION_SIZES where its wrist is visible and its person vouches, ``_surest``), then per
        palm region, the hand or None; each re-centred where it scored a little under its bar."""
        vouched = [h.visible and vouches(self.people_found[h.person]) for h in person_regions]
        looks = [(k, size) for k, h in enumerate(person_regions) for size in (PERSON_REGION_SIZES if vouched[k] else (1.0,))]
        regions = [_resized(person_regions[k].region, size) for k, size in looks] + palm_regions
        thresholds = ([self.min_presence_person if vouched[k] else self.min_presence for k, _ in looks]
                      + [self.min_presence] * len(palm_regions))
        looked = self.recentre(rgb, self.landmarker.look(rgb, regions), thresholds)
        by_region = [[(size, h) for (j, size), h in zip(looks, looked) if j == k] for k in range(len(person_regions))]
        return [_surest(sized, self.min_presence) for sized in by_region] + looked[len(looks):]

    def recentre(self, rgb: np.ndarray, looked: list, thresholds: list[float]) -> list:
        """A second look, in the region its own landmarks give (MediaPipe's tracking step,
        ``region_from_landmarks``), for each region whose presence was between RECENTRE_FROM and its
        threshold (a small or off-centre hand: a palm's or a re-crop's square can miss half of it). The
        second look replaces the first where it scores higher."""
        again = [k for k, hand in enumerate(looked) if hand is not None and RECENTRE_FROM <= hand.presence <= thresholds[k]]
        if not again:
            return looked
        second = self.landmarker.look(rgb, [region_from_landmarks(looked[k].landmarks[:, :2]) for k in again])
        looked = list(looked)
        for k, hand in zip(again, second):
            if hand is not None and hand.presence > looked[k].presence:
                looked[k] = hand
        return looked

    def palm_regions(self, rgb: np.ndarray) -> tuple[list[Region], list[str]]:
        """Regions of the palms found in the whole photo and its tiles (one batch), one per hand, and
        where each was found ("palm" | "tile")."""
        tiles = photo_tiles(*rgb.shape[:2]) if self.tiles else []
        found = self.palms.find_many([rgb] + [t.cut(rgb) for t in tiles])
        whole = [region_from_palm(p.box, p.keypoints) for p in found[0]]
        tiled = []
        for tile, palms in zip(tiles, found[1:]):
            offset = np.array([tile.x0, tile.y0], np.float64)
            tiled += [region_from_palm(p.box + np.tile(offset, 2), p.keypoints + offset) for p in palms]
        # the whole photo's regions win over the tiles' (later groups replace earlier ones they overlap)
        merged = merge_regions(tiled, whole)
        whole_ids = {id(r) for r in whole}
        return merged, ["palm" if id(r) in whole_ids else "tile" for r in merged]


def side_from_pose(find: FoundHand, sides_read: set[str], sure: float = SIDE_SURE) -> FoundHand:
    """A find on a pose wrist (``owner``) gets that person; and that wrist's side where the landmark
    network read the hand both ways (``sides_read``: the sides of all the finds merged into it) and is
    under ``sure`` for its choice (its ``right`` becomes 1 - right: the pose's side, the network's
    confidence). A network that reads the hand one way only keeps its side: the pose mixes up the
    wrists of people seen in profile."""
    if find.owner is None:
        return find
    person, side = find.owner
    hand = find.hand
    if hand.side != side and side in sides_read and hand.side_score < sure:
        hand = dataclasses.replace(hand, right=1.0 - hand.right)
    return dataclasses.replace(find, hand=hand, person=find.person if find.person >= 0 else person)


def one_per_hand(finds: list[FoundHand], iou: float = DUPLICATE_IOU) -> list[FoundHand]:
    """One find per hand: overlapping finds (landmark boxes' IoU > ``iou``, or the smaller mostly
    inside the larger with the same side or with a presence under MIN_PRESENCE: a part of a hand read
    as a weak hand, or ``_same_palm``) are one hand, except two on one person's
    two wrists (``owner``); the highest presence stays, with the person of any person-derived find of
    that hand, the owner of any find of it, the side of the find surest of its side (``Hand.right``:
    the landmarks of the surest hand, the side of the surest side call), then settled by
    ``side_from_pose``."""
    finds = [f for f in finds if not any(_part_of(f, other) for other in finds if _sure(other))]
    if not finds:
        return []
    order = sorted(range(len(finds)), key=lambda i: -finds[i].hand.presence)
    boxes = np.stack([f.box() for f in finds])
    overlap = box_iou_matrix(boxes, boxes)
    kept: list[int] = []
    members: dict[int, list[int]] = {}
    for i in order:
        inside = [_contained(boxes[i], boxes[k]) > DUPLICATE_CONTAINED for k in range(len(finds))]
        weak = finds[i].hand.presence <= MIN_PRESENCE
        home = next((k for k in kept if not _two_wrists(finds[i], finds[k]) and (
                     overlap[i, k] > iou or _same_palm(finds[i], finds[k]) or
                     (inside[k] and (weak or finds[i].hand.side == finds[k].hand.side)))),
                    None)
        if home is None:
            kept.append(i)
            members[i] = [i]
        else:
            members[home].append(i)
    out = []
    for k in kept:
        person = next((finds[m].person for m in members[k] if finds[m].person >= 0), -1)
        owner = next((finds[m].owner for m in members[k] if finds[m].owner is not None), None)
        surest_side = max((finds[m].hand for m in members[k]), key=lambda h: h.side_score)
        merged = dataclasses.replace(finds[k], hand=dataclasses.replace(finds[k].hand, right=surest_side.right),
                                     person=person, owner=owner)
        out.append(side_from_pose(merged, {finds[m].hand.side for m in members[k]}))
    return out


def _resized(region: Region, size: float) -> Region:
    """The region, its sides times ``size``, same centre and rotation."""
    return dataclasses.replace(region, width=region.width * size, height=region.height * size)


def _surest(looks: list[tuple[float, Optional[Hand]]], clear: float) -> Optional[Hand]:
    """One hand region's looks [(size, Hand or None)] -> the hand with the highest presence, or None;
    a look at another size than the region's own (1.0) counts only where its presence passes
    ``clear`` (a hand that only shows at another size must show clearly)."""
    found = [h for size, h in looks if h is not None and (size == 1.0 or h.presence > clear)]
    return max(found, key=lambda h: h.presence) if found else None


def _sure(find: FoundHand) -> bool:
    """Whether a find is sure enough to absorb the pieces inside it: presence over MIN_PRESENCE, or on a
    pose wrist (a weaker find may yet be dropped as a face or as unstable, and must not take a real
    hand with it)."""
    return find.hand.presence > MIN_PRESENCE or find.owner is not None


def _part_of(small: FoundHand, large: FoundHand) -> bool:
    """Whether a find is a piece of a larger hand read as a whole hand (a fingertip or a knuckle: the
    network draws a tiny hand there, often of the other side, often on a wrist the pose put there):
    at most PART_OF_HAND of the other's size, and mostly (DUPLICATE_CONTAINED) inside its landmark box
    grown by PART_SLACK of its size. Two real hands that far apart in size seldom overlap so."""
    small_size, large_size = hand_size(small.hand.landmarks), hand_size(large.hand.landmarks)
    if small_size > PART_OF_HAND * large_size:
        return False
    grown = large.box() + PART_SLACK * large_size * np.array([-1.0, -1.0, 1.0, 1.0])
    return _contained(small.box(), grown) > DUPLICATE_CONTAINED


def _two_wrists(a: FoundHand, b: FoundHand) -> bool:
    """Whether two finds lie on the two different wrists of one person (two hands, however they overlap)."""
    return a.owner is not None and b.owner is not None and a.owner[0] == b.owner[0] and a.owner[1] != b.owner[1]


def _same_palm(a: FoundHand, b: FoundHand) -> bool:
    """Whether two finds put the wrist and the middle finger within SAME_PALM of the larger hand's
    size of each other (``hand_landmarker.same_palm``)."""
    return same_palm(a.hand, b.hand, SAME_PALM)


def _contained(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of the smaller of two (4,) boxes inside the other."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return float(w * h / smaller) if smaller > 0 else 0.0
