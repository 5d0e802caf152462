"""Find hands in a full photo or frame: MediaPipe Hands' pipeline (0.10.21's palm detector, hand
regions and landmark model, trained on real photos) as handcap's own torch modules (``core.perception``).

It gives, per hand, 21 landmarks in the FreiHAND/OpenPose order our networks use, world landmarks
(metres) and a side. MediaPipe's handedness label assumes a mirrored (selfie) image;
``Detection.side`` is the person's real hand in an ordinary photo.

A photo is looked at in up to three passes, each only when the one before found nothing:
  1. every person's hands, then palms on the photo and its tiles, one result per hand
     (``core.perception.hand_finder.HandFinder``; a video frame: the palm detector and the landmark
     model in the palms' and the tracked hands' regions, ``HandTracker``);
  2. the same on ``search_views``: the photo shrunk inside a border and turned (close-ups, hands far
     from upright);
  3. ``RegionSweep``: the landmark model alone, on square windows of the photo at several sizes,
     positions and turns, kept only when it still finds the hand after re-centring and in perturbed
     views. The palm detector misses hands whose palm it cannot see (gloves, hands around an
     instrument or an object); the landmark model, given the right window, does not.
This module is the engine-facing layer; the pipeline itself is in ``core.perception``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Optional

import cv2
import numpy as np
import torch

from core.perception.hand_finder import HandFinder
from core.perception.hand_landmarker import Hand, HandLandmarker, LandmarkPass
from core.perception.hand_tracker import HandTracker, load_networks
from core.perception.regions import Region

DETECT_MAX_SIDE = 1280          # larger images are scaled down for detection (MediaPipe works at 192-256 px)
DUPLICATE_IOU = 0.5             # two detections overlapping more than this are one hand
DUPLICATE_CONTAINED = 0.8
BF16_ON_GPU = False             # bfloat16 moved the landmarks by 0.67 crop px on average (tolerance 0.5): float32
VIDEO_PALM_EVERY = 4            # video: while a hand is tracked, the palm detector looks for more every n-th frame
VIDEO_MAX_HANDS = 2             # video: hands tracked when max_hands is None (photos: every hand found)
SEARCH_MAX_HANDS = 8            # photos: hands the fallback passes (search views, sweep) look for at most
CHECK_PRESENCE = 0.5            # photos: finds in a tile, or from a person's pose under this presence, must pass
                                # RegionSweep.are_stable (on 27 photos without hands: 3 false hands without it, 0 with)


@dataclasses.dataclass
class Detection:
    """One hand found in an image (pixels of the full image, x right, y down)."""

    box: np.ndarray                         # (4,) x0, y0, x1, y1
    side: str                               # "right" | "left" (the person's hand)
    score: float                            # detector confidence in [0, 1]
    keypoints_2d: Optional[np.ndarray]      # (21, 2) landmarks, or None (a box from the user)
    source: str = "mediapipe"               # "mediapipe" (palm detector) | "person" (a person's pose) | "tile"
                                            # (palm detector on a tile) | "box" (given by the user) | "search" | "sweep"
                                            # | "back" (video: looked back for, core.engine.chunk_chains) | "views" (looked again
                                            # where the other views put it, core.multiview.look_again)
    world_landmarks: Optional[np.ndarray] = None   # (21, 3) metres, camera axes, origin near the hand's centre
    person: int = -1                        # which person of the photo the hand belongs to; -1: not known
    # a hand tracked in a video: the region it was found in (full-image pixels) and the landmark model's
    # pass over that region's crop, which a network on the landmark trunk reuses (core.engine.pipeline)
    tracked_region: Optional[Region] = None
    seen: Optional[LandmarkPass] = None
    chain: int = -1                         # video: the detector's chain number (core.perception.hand_tracker)


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


LANDMARK_MODELS = ("full", "lite")   # MediaPipe's model sizes (model_complexity 1, 0): palm detector and landmark model


class HandDetector:
    """MediaPipe Hands' pipeline (``core.perception``): ``detect(rgb) -> [Detection]`` for one photo or
    successive video frames.

    max_hands: at most this many hands per image (None: every hand of a photo, VIDEO_MAX_HANDS per video
    frame); min_confidence: the palm detector's threshold;
    video: track landmarks from frame to frame (faster; frames must be given in order).
    landmarks: the model size, "full" or "lite" (on a 2-core CPU faster; its landmarks were 22% further
    from the truth on held-out synthetic renders). device: where the networks run ("cpu", "cuda").
    palm_every: video only, see ``core.perception.hand_tracker`` (default VIDEO_PALM_EVERY; 1 is
    MediaPipe's graph exactly).
    """

    def __init__(self, max_hands: Optional[int] = None, min_confidence: float = 0.3, video: bool = False,
                 landmarks: str = "full", device="cpu", palm_every: int = VIDEO_PALM_EVERY):
        if landmarks not in LANDMARK_MODELS:
            raise ValueError(f"landmarks must be one of {LANDMARK_MODELS}, got {landmarks!r}")
        if max_hands is None and video:
            max_hands = VIDEO_MAX_HANDS
        self.max_hands, self.device = max_hands, device
        self._tracker = HandTracker.load(max_hands or SEARCH_MAX_HANDS, min_confidence, video, landmarks, device,
                                         bf16=_bf16(device), palm_every=palm_every)
        self._finder = None if video else HandFinder.load(landmarks, device, min_confidence, max_hands=max_hands,
                                                          bf16=_bf16(device))
        self._sweep = None          # RegionSweep, made on first need (photos; videos: ``look``)

    def close(self) -> None:
        """Ends the tracker's palm-detector thread (the networks are shared and stay loaded, see
        ``core.perception.hand_tracker.load_networks``)."""
        self._tracker.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def detect(self, rgb: np.ndarray, search: bool = False) -> list[Detection]:
        """(H, W, 3) uint8 RGB -> the hands in it, best first. With ``search``, a photo where the first
        pass finds nothing is searched again, first in ``search_views`` (the palm detector misses hands
        that fill the frame, and hands far from upright), then by ``RegionSweep``."""
        found = self._find(rgb) if self._finder is not None else self._detect(rgb)
        for view, to_source in (search_views(rgb) if search and not found else []):
            for d in self._detect(view):
                found.append(_from_points(to_source(d.keypoints_2d), d.side, d.score, "search"))
            if found:
                break
        if search and not found:
            if self._sweep is None:
                self._sweep = RegionSweep(device=self.device)
            small, scale = _detection_view(rgb)
            found = [_from_points(d.keypoints_2d / scale, d.side, d.score, d.source, world=d.world_landmarks)
                     for d in self._sweep.find(small, self.max_hands or SEARCH_MAX_HANDS)]
        return drop_duplicates(found)[:self.max_hands]

    def look(self, rgb: np.ndarray, window: "Window") -> Optional[Detection]:
        """The hand the landmark model alone (this detector's own) finds in ``window`` (pixels) of
        ``rgb`` (H, W, 3), or None (``RegionSweep.probe``; videos look back for a hand with it:
        core.engine.chunk_chains, from the engine's thread while this detector's thread detects
        later frames; the two share the network's weights, read only)."""
        if self._sweep is None:
            self._sweep = RegionSweep(device=self.device, landmarker=self._tracker.landmarker)
        return self._sweep.probe(rgb, window)

    def _find(self, rgb: np.ndarray) -> list[Detection]:
        """A photo's hands by ``HandFinder`` (people first, then palms), each with its person. The less
        certain finds that no pose wrist vouches for (``FoundHand.owner`` None: in a tile, where the whole
        photo's palm detector saw nothing, or from a person's pose region with a presence under
        CHECK_PRESENCE) are kept only when ``RegionSweep.are_stable``; a hand on a wrist is expected
        there, and small hands seldom pass that check."""
        height, width = rgb.shape[:2]
        small, _ = _detection_view(rgb)
        finds = self._finder(small)
        doubtful = [i for i, f in enumerate(finds) if f.owner is None and
                    (f.source == "tile" or (f.source == "person" and f.hand.presence < CHECK_PRESENCE))]
        if doubtful:
            if self._sweep is None:
                self._sweep = RegionSweep(device=self.device)
            stable = self._sweep.are_stable(small, [_from_hand(finds[i].hand) for i in doubtful])
            dropped = {i for i, ok in zip(doubtful, stable) if not ok}
            finds = [f for i, f in enumerate(finds) if i not in dropped]
        to_full = np.array([width / small.shape[1], height / small.shape[0]])
        return [dataclasses.replace(_from_hand(f.hand, to_full, _SOURCES[f.source]), person=f.person) for f in finds]

    def _detect(self, rgb: np.ndarray) -> list[Detection]:
        height, width = rgb.shape[:2]
        small, _ = _detection_view(rgb)
        to_full = np.array([width / small.shape[1], height / small.shape[0]])
        detections = [_from_hand(hand, to_full) for hand in self._tracker(small)]
        return drop_duplicates(detections)[:self.max_hands]


_SOURCES = {"person": "person", "palm": "mediapipe", "tile": "tile"}    # HandFinder's sources -> Detection.source


def _bf16(device) -> bool:
    """Whether the landmark model runs under bfloat16 autocast: on a GPU, where BF16_ON_GPU allows it."""
    return torch.device(device).type == "cuda" and BF16_ON_GPU


def _from_hand(hand: Hand, to_full=(1.0, 1.0), source: str = "mediapipe") -> Detection:
    """A detection from a ``core.perception`` hand, its pixels scaled by ``to_full`` (2,); a tracked
    hand keeps its region (scaled alike) and the landmark model's pass over it."""
    found = _from_points(hand.landmarks[:, :2] * to_full, hand.side, hand.side_score, source, world=hand.world)
    if hand.tracked:
        r, scale = hand.region, float(np.mean(to_full))
        found.tracked_region = dataclasses.replace(r, cx=r.cx * to_full[0], cy=r.cy * to_full[1],
                                                   width=r.width * scale, height=r.height * scale)
        found.seen = hand.seen
    found.chain = hand.chain
    return found


def _from_points(points: np.ndarray, side: str, score: float, source: str = "mediapipe",
                 world: Optional[np.ndarray] = None) -> Detection:
    """A detection from (21, 2) landmarks in pixels; its box is theirs."""
    return Detection(box=np.concatenate([points.min(0), points.max(0)]), side=side, score=score,
                     keypoints_2d=points, source=source, world_landmarks=world)


def _detection_view(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """The photo at most DETECT_MAX_SIDE pixels on its long side (contiguous), and its scale."""
    height, width = rgb.shape[:2]
    scale = min(1.0, DETECT_MAX_SIDE / max(height, width))
    if scale == 1.0:
        return np.ascontiguousarray(rgb), 1.0
    return cv2.resize(rgb, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA), scale


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


# ------------------------------------------------------------------------------ region sweep

SWEEP_SCALES = (1.0, 0.6)       # window sides, fractions of the photo's short side (large hands only:
                                # small ones are the palm detector's strength, and small windows of
                                # clutter are where the landmark model sees hands that are not there)
SWEEP_TURNS = 4                 # window rotations tried: 0, 90, 180, 270 degrees
SWEEP_RECENTRE = 3              # re-centrings of a window on the landmarks it found (whatever their presence)
CHECK_VIEWS = ((0.35, 1.0, 0.0), (-0.35, 1.0, 0.0), (0.0, 0.8, 0.0), (0.0, 1.25, 0.0),
               (0.0, 1.0, 0.15), (0.0, 1.0, -0.15))   # (turn rad, size factor, shift in window sides)
CHECK_MIN_FOUND = 4             # of the CHECK_VIEWS, at least this many must find the hand again ...
CHECK_MAX_SHIFT = 0.10          # ... with landmarks (median over views) within this fraction of the hand's size

@dataclasses.dataclass
class Window:
    """A square region of a photo, turned: centre (pixels), side (pixels), rotation (radians, MediaPipe's
    convention: the angle by which the window is turned clockwise in the image)."""

    cx: float
    cy: float
    size: float
    rotation: float


def window_from_landmarks(points: np.ndarray) -> Window:
    """The window MediaPipe's tracker would look at next for (21, 2) landmarks: turned so that the
    wrist -> middle-finger base points up, twice the landmarks' extent in that frame."""
    wrist, middle = points[0], points[9]
    rotation = math.pi / 2 - math.atan2(-(middle[1] - wrist[1]), middle[0] - wrist[0])
    rotation = (rotation + math.pi) % (2 * math.pi) - math.pi
    c, s = math.cos(rotation), math.sin(rotation)
    to_window = np.array([[c, s], [-s, c]])               # image offsets -> window axes
    local = (points - points.mean(0)) @ to_window.T
    low, high = local.min(0), local.max(0)
    centre = points.mean(0) + to_window.T @ ((low + high) / 2)
    return Window(float(centre[0]), float(centre[1]), float(max(high - low) * 2.0), rotation)


def sweep_windows(height: int, width: int, scales=SWEEP_SCALES, turns: int = SWEEP_TURNS) -> list[Window]:
    """Windows covering a (height, width) photo: for each scale, squares of that fraction of the short
    side overlapping by half, each at ``turns`` rotations; largest first."""
    windows = []
    for scale in scales:
        side = scale * min(height, width)
        xs = np.linspace(side / 2, width - side / 2, max(1, math.ceil((width - side) / (side / 2)) + 1))
        ys = np.linspace(side / 2, height - side / 2, max(1, math.ceil((height - side) / (side / 2)) + 1))
        for cy, cx, turn in itertools.product(ys, xs, range(turns)):
            rotation = (turn * 2 * math.pi / turns + math.pi) % (2 * math.pi) - math.pi
            windows.append(Window(float(cx), float(cy), float(side), rotation))
    return windows


class RegionSweep:
    """The landmark model alone on chosen windows of a photo (what MediaPipe's tracker runs, fed our
    windows instead of the palm detector's regions), many windows per forward pass. The model finds
    a hand only where its presence score passes 0.5, so each window is a hand / no-hand test."""

    def __init__(self, device="cpu", landmarker: Optional[HandLandmarker] = None):
        if landmarker is None:
            landmarker = HandLandmarker(load_networks("full", str(device))[1], bf16=_bf16(device))
        self.landmarker = landmarker
        self._any = HandLandmarker(landmarker.net, min_presence=-1.0, bf16=landmarker.bf16)   # every window's landmarks

    def close(self) -> None:
        """Nothing to free; kept for symmetry with ``HandDetector``."""

    def probe(self, rgb: np.ndarray, window: "Window") -> Optional[Detection]:
        """The hand the landmark model finds in ``window`` of ``rgb`` (H, W, 3), or None."""
        return self.probe_many(rgb, [window])[0]

    def probe_many(self, rgb: np.ndarray, windows: list) -> list[Optional[Detection]]:
        """``probe`` for many windows of one photo in one batch."""
        regions = [Region(w.cx, w.cy, w.size, w.size, w.rotation) for w in windows]
        return [None if h is None else _from_hand(h, source="sweep") for h in self.landmarker.look(rgb, regions)]

    def find(self, rgb: np.ndarray, max_hands: int = 2) -> list[Detection]:
        """(H, W, 3) uint8 RGB -> hands found by sweeping ``sweep_windows``, best first. A window where
        the model finds a hand is re-centred up to SWEEP_RECENTRE times on the landmarks it gives
        (followed even where the presence score dips below 0.5 on the way: near a hard hand it wavers);
        the first re-centred window that holds the hand and passes ``is_stable`` is the window's find.
        Windows whose centre lies in a hand found from an earlier window are passed over. Each stage runs
        for all windows in one batch; the choice then goes through the windows in order, as a
        window-by-window sweep would."""
        windows = sweep_windows(*rgb.shape[:2])
        hands = self.probe_many(rgb, windows)
        chosen = [None] * len(windows)
        for _ in range(SWEEP_RECENTRE):
            hands, present = self._recentred(rgb, hands)
            ask = [i for i, h in enumerate(hands) if present[i] and chosen[i] is None]
            for i, stable in zip(ask, self.are_stable(rgb, [hands[i] for i in ask])):
                if stable:
                    chosen[i] = hands[i]
            hands = [None if c is not None else h for h, c in zip(hands, chosen)]     # settled windows stop
        found = []
        for i, window in enumerate(windows):
            if any(_inside(window, d.box) for d in found):
                continue                  # that hand is found already
            if chosen[i] is not None:
                found = drop_duplicates(found + [chosen[i]])
                if len(found) >= max_hands:
                    break
        return found

    def _recentred(self, rgb: np.ndarray, hands: list) -> tuple[list, list]:
        """Each hand (None: none) looked for again in ``window_from_landmarks`` of its landmarks ->
        (the model's hands there whatever their presence score, whether each is present)."""
        index = [i for i, h in enumerate(hands) if h is not None]
        windows = [window_from_landmarks(hands[i].keypoints_2d) for i in index]
        regions = [Region(w.cx, w.cy, w.size, w.size, w.rotation) for w in windows]
        hands, present = list(hands), [False] * len(hands)
        for i, hand in zip(index, self._any.look(rgb, regions)):
            hands[i] = _from_hand(hand, source="sweep")
            present[i] = hand.presence > self.landmarker.min_presence
        return hands, present

    def look_in(self, rgb: np.ndarray, box) -> Optional[Detection]:
        """The hand in a box the user drew, (4,) x0, y0, x1, y1 pixels of ``rgb`` (H, W, 3): the
        landmark model's find in a window around the box (tried at SWEEP_TURNS turns, the first that
        finds it re-centred once), with its side and landmarks; None when it sees no hand there."""
        small, scale = _detection_view(rgb)
        x0, y0, x1, y1 = (float(v) * scale for v in box)
        windows = [Window((x0 + x1) / 2, (y0 + y1) / 2, 1.5 * max(x1 - x0, y1 - y0),
                          (turn * 2 * math.pi / SWEEP_TURNS + math.pi) % (2 * math.pi) - math.pi)
                   for turn in range(SWEEP_TURNS)]
        for hand in self.probe_many(small, windows):
            if hand is not None:
                hand = self.probe(small, window_from_landmarks(hand.keypoints_2d)) or hand
                return _from_points(hand.keypoints_2d / scale, hand.side, hand.score, "box")
        return None

    def is_stable(self, rgb: np.ndarray, hand: Detection) -> bool:
        """Whether the landmark model finds the same hand in views turned, scaled and shifted around
        it (CHECK_VIEWS): a real hand is found again in place; shapes it merely mistakes for a hand
        tend to vanish or move."""
        return self.are_stable(rgb, [hand])[0]

    def are_stable(self, rgb: np.ndarray, hands: list[Detection]) -> list[bool]:
        """``is_stable`` for many hands of one photo in one batch."""
        views = []
        for hand in hands:
            home = window_from_landmarks(hand.keypoints_2d)
            views += [Window(home.cx + shift * home.size, home.cy, home.size * factor, home.rotation + turn)
                      for turn, factor, shift in CHECK_VIEWS]
        again = self.probe_many(rgb, views)
        verdicts = []
        for k, hand in enumerate(hands):
            hand_size = float(np.linalg.norm(hand.box[2:] - hand.box[:2]))
            shifts = [np.inf if a is None else float(np.linalg.norm(a.keypoints_2d - hand.keypoints_2d, axis=1).mean()) / hand_size
                      for a in again[k * len(CHECK_VIEWS):(k + 1) * len(CHECK_VIEWS)]]
            verdicts.append(sum(np.isfinite(shifts)) >= CHECK_MIN_FOUND and float(np.median(shifts)) <= CHECK_MAX_SHIFT)
        return verdicts


def _inside(window: Window, box: np.ndarray) -> bool:
    """Whether a window's centre lies in a (4,) box."""
    return bool(box[0] <= window.cx <= box[2] and box[1] <= window.cy <= box[3])
