"""Frames in, posed hands out: detect, crop, run the network (batched), place in the camera, refine.

    engine = Engine(EngineOptions(device="auto"))
    hands = engine.estimate_frames([rgb], K)[0]        # [HandEstimate] of the first frame

All hands of all frames given in one call go through the network as one batch and through the
refinement as one batch. Left hands are cropped mirrored (the network sees right hands) and
mirrored back (core.engine.fitting).

The default network reads MediaPipe's hand-landmark model as its trunk (core.networks.landmark_trunk),
the model the detector runs too. Its crop of a hand is the region MediaPipe's tracker makes from the
hand's landmarks (``region_from_landmarks``, mirrored for a left hand): in a video, a hand tracked
from the last frame was found in just such a crop (core.perception.hand_tracker), so the detector's
pass over it is reused and the trunk runs only on the other hands (photos, newly found hands).
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from core.crops import CROP_MARGIN, crop_matrix, cut_crop, keypoint_box, upright_angle
from core.hand_model import HandLayer, PosePrior, load_hand_model
from core.perception.regions import Region, region_from_landmarks
from core.perception.warp import BORDER_REPLICATE, cut_regions

from .detect import LANDMARK_MODELS, Detection, HandDetector, RegionSweep
from .fitting import FIT_STEPS, HandFitter, mirror_intrinsics, mirror_to_left
from .placement import HandPlacer
from .network import HandNetwork, resolve_device, resolve_weights
from .timing import StageTimes

SIDES = ("auto", "right", "left")
OTHER_SIDE = {"right": "left", "left": "right"}
# A side the detector calls with less confidence than SIDE_SURE is decided by fitting both sides. Off
# (0.5: the detector's confidence is never below it): on 264 held-out synthetic renders the fit's choice
# was no better than the detector's (right sides 81.4% at 0.8, 81.1% at 0.9, 81.8% off).
SIDE_SURE = 0.5


@dataclasses.dataclass
class EngineOptions:
    """Settings of the engine (the command line's options; see ``handcap estimate --help``)."""

    device: str = "auto"                 # auto | cpu | cuda
    weights: Optional[str] = None        # a .safetensors file, "fast", "accurate", or None (best shipped)
    hand: str = "auto"                   # auto (both sides) | right | left (only that side)
    max_hands: Optional[int] = None      # per photo or frame; None: every hand of a photo, 2 per video frame
    refine: bool = True                  # fit to the 2D keypoints after the network
    fit_steps: int = FIT_STEPS
    min_confidence: float = 0.3          # detector threshold
    landmarks: str = "full"              # MediaPipe's hand models (palm detector + landmarks): full | lite (faster, less exact)
    boxes: tuple = ()                    # (x0, y0, x1, y1) pixels: use these regions instead of detection
    threads: int = 0                     # CPU threads for torch (0: torch's default)


@dataclasses.dataclass
class HandEstimate:
    """One hand in one frame, in the full image's camera (OpenCV axes, metres, pixels, radians)."""

    side: str                  # "right" | "left"
    score: float               # detection confidence in [0, 1]
    box: np.ndarray            # (4,) x0, y0, x1, y1 of the detection, pixels
    pose: np.ndarray           # (16, 3) axis-angle of the hand model of that side
    betas: np.ndarray          # (B,)
    transl: np.ndarray         # (3,) the hand layer's translation
    joints_3d: np.ndarray      # (21, 3) camera space
    keypoints_2d: np.ndarray   # (21, 2) pixels
    source: str = "mediapipe"  # where the hand was found: Detection.source (core.engine.detect)
    side_confidence: float = 1.0   # probability that ``side`` is right: the detector's, or the fit's when it decided
    person: int = -1           # which person of the photo the hand belongs to (the detector's); -1: not known
    chain: int = -1            # video: frames of one chain number were one hand followed by the detector


def choose_sides(count: int, unsure: list[int], energy: np.ndarray, scores: list[float]) -> tuple[list[int], list[float]]:
    """Which of the fitted hands to keep, and how sure each one's side is.

    Hands 0..count-1 are the detections as the detector called them; hand count + n is detection
    ``unsure[n]`` fitted as the other side. Of each such pair the one with the lower fit ``energy``
    (N,) is kept, its side confidence exp(-E) / (exp(-E) + exp(-E_other)); the other hands keep
    their detector ``scores``. Returns (kept indices, side confidences), in detection order."""
    chosen, confidence = list(range(count)), list(scores[:count])
    for n, i in enumerate(unsure):
        j = count + n
        keep, drop = (i, j) if energy[i] <= energy[j] else (j, i)
        chosen[i] = keep
        confidence[i] = float(1.0 / (1.0 + np.exp(np.clip(energy[keep] - energy[drop], -50.0, 50.0))))
    return chosen, confidence


class Engine:
    """Loads the network, detector and hand model once; ``estimate_frames`` does the work."""

    def __init__(self, options: EngineOptions = EngineOptions()):
        if options.hand not in SIDES:
            raise ValueError(f"hand must be one of {SIDES}, got {options.hand!r}")
        self.options = options
        self.device = resolve_device(options.device)
        self.network = HandNetwork(resolve_weights(options.weights, self.device), self.device, options.threads)
        model = load_hand_model(self.network.config.hand_model, "right")
        self.layer = HandLayer(model).to(self.device)
        self.fitter = HandFitter(self.layer, PosePrior(model).to(self.device),
                                 steps=options.fit_steps if options.refine else 0).to(self.device)
        self.placer = HandPlacer(self.fitter, self.device, self.network.input_size, options.refine)
        if options.landmarks not in LANDMARK_MODELS:
            raise ValueError(f"landmarks must be one of {sorted(LANDMARK_MODELS)}, got {options.landmarks!r}")
        self.detector = None if options.boxes else HandDetector(options.max_hands, options.min_confidence,
                                                                  landmarks=options.landmarks, device=self.device)
        self.box_looker = RegionSweep(device=self.device) if options.boxes else None
        self.times = StageTimes()

    def close(self) -> None:
        for part in (self.detector, self.box_looker):
            if part is not None:
                part.close()

    def video_detector(self) -> Optional[HandDetector]:
        """A detector that tracks from frame to frame, for one video (None with user boxes)."""
        o = self.options
        return None if o.boxes else HandDetector(o.max_hands, o.min_confidence, video=True, landmarks=o.landmarks,
                                                 device=self.device)

    def detect(self, rgb: np.ndarray, detector: Optional[HandDetector] = None, boxes: Optional[tuple] = None) -> list[Detection]:
        """The hands to estimate in one frame: the user's boxes (``boxes`` in this frame's pixels, clipped
        to it by the caller; default: the options' boxes), or the finds of ``detector`` (default: the
        engine's photo detector), filtered by side."""
        boxes = self.options.boxes if boxes is None else boxes
        if boxes:
            with self.times("detect"):
                return [self._in_box(rgb, np.asarray(b, np.float64)) for b in boxes]
        with self.times("detect"):
            found = (detector or self.detector).detect(rgb, search=detector is None)
        if self.options.hand != "auto":
            found = [d for d in found if d.side == self.options.hand]
        return found

    def _side_unsure(self, detection: Detection) -> bool:
        """Whether to fit this hand as both sides: its landmarks are there, the detector's side call
        is weak, and the user did not fix the side with --hand."""
        return (self.options.hand == "auto" and self.options.refine and detection.keypoints_2d is not None
                and detection.score < SIDE_SURE)

    def _in_box(self, rgb: np.ndarray, box: np.ndarray) -> Detection:
        """A user's (4,) box: the landmark model looks inside it for the hand's side and
        landmarks. Where it sees none (or a hand of the side --hand excludes), the box is used as it
        is, as the --hand side (right when auto)."""
        found = self.box_looker.look_in(rgb, box)
        if found is not None and self.options.hand in ("auto", found.side):
            return dataclasses.replace(found, box=box)
        side = "left" if self.options.hand == "left" else "right"
        return Detection(box=box, side=side, score=1.0, keypoints_2d=None, source="box")

    def estimate_frames(self, frames: list[np.ndarray], K: np.ndarray,
                        detections: Optional[list[list[Detection]]] = None) -> list[list[HandEstimate]]:
        """(H, W, 3) uint8 RGB frames of one camera with intrinsics K (3, 3) -> per frame, its hands."""
        if detections is None:
            detections = [self.detect(rgb) for rgb in frames]
        items = [(f, d) for f, found in enumerate(detections) for d in found]
        if not items:
            return [[] for _ in frames]
        # a hand whose side the detector is unsure of is also tried as the other side (see choose_sides)
        unsure = [i for i, (_, d) in enumerate(items) if self._side_unsure(d)]
        items += [(items[i][0], dataclasses.replace(items[i][1], side=OTHER_SIDE[items[i][1].side])) for i in unsure]
        with self.times("crop"):
            crops, matrices, centres, sides, hand_sizes, Ks, angles, seen = self._crops(frames, items, K)
        with self.times("network"):
            out = self.network.predict(crops, angles=angles, seen=seen)
        with self.times("refine"):
            pose, betas, transl, joints, keypoints, energy = self.placer.place(frames, items, out, matrices,
                                                                               centres, sides, hand_sizes, Ks)
        chosen, confidence = choose_sides(len(items) - len(unsure), unsure, energy,
                                          [d.score for _, d in items])
        results = [[] for _ in frames]
        for i, side_confidence in zip(chosen, confidence):
            f, d = items[i]
            p, t, j, k = pose[i], transl[i], joints[i], keypoints[i]
            if d.side == "left":
                p, t = mirror_to_left(p, t)
                j = j * np.array([-1.0, 1.0, 1.0])
                k = np.stack([frames[f].shape[1] - 1 - k[:, 0], k[:, 1]], axis=1)
            results[f].append(HandEstimate(side=d.side, score=d.score, box=np.asarray(d.box, np.float64),
                                           pose=p.astype(np.float32), betas=betas[i].astype(np.float32),
                                           transl=t.astype(np.float32), joints_3d=j.astype(np.float32),
                                           keypoints_2d=k.astype(np.float32), source=d.source,
                                           side_confidence=float(side_confidence), person=d.person,
                                           chain=d.chain))
        return results

    def _crops(self, frames, items, K):
        """Right-hand crops (N, S, S, 3) of the detections, their crop matrices, and in the right-hand
        frame: crop centres (N, 2), crop sides (N,) pixels, hand sizes (N,) pixels (``keypoint_box``'s
        side, the fit's scale), intrinsics (N, 3, 3); the angles (N,) the crops were cut at (the
        matrices are those of angle 0, the frame HandNetwork.predict answers in); and per crop the
        detector's landmark pass to reuse, or None (see the module docstring)."""
        size = self.network.input_size
        crops, matrices, centres, sides, hand_sizes, mirrored_K, angles, seen = [], [], [], [], [], [], [], []
        for f, d in items:
            width = frames[f].shape[1]
            points = d.keypoints_2d if d.keypoints_2d is not None else d.box.reshape(2, 2)
            margin = CROP_MARGIN if d.keypoints_2d is not None else CROP_MARGIN / 1.2  # a box is looser than keypoints
            centre, side = keypoint_box(points, margin)
            hand_sizes.append(side)
            left = d.side == "left"
            reuse = None
            if self.network.trunk_variant is not None:      # the landmark trunk: a MediaPipe hand region
                region, reuse = self._trunk_region(d, centre, side, left)
                crops.append(reuse.crop if reuse is not None else cut_regions(frames[f], [region], size, BORDER_REPLICATE)[0][0])
                centre, side = np.array([region.cx, region.cy]), region.width
                angle = region.rotation if left else -region.rotation     # core.crops' angle of the region's crop
            else:
                angle = upright_angle(d.keypoints_2d, left) if self.network.upright and d.keypoints_2d is not None else 0.0
                crops.append(cut_crop(frames[f], crop_matrix(centre, side, size, angle, flip=left), size))
            seen.append(reuse)
            angles.append(angle)
            matrices.append(crop_matrix(centre, side, size, 0.0, flip=left))
            centres.append([width - 1 - centre[0], centre[1]] if left else centre)
            sides.append(side)
            mirrored_K.append(mirror_intrinsics(K, width) if left else np.asarray(K, np.float64))
        return (np.stack(crops), matrices, np.asarray(centres), np.asarray(sides), np.asarray(hand_sizes),
                np.stack(mirrored_K), np.asarray(angles), seen)

    def _trunk_region(self, d: Detection, centre: np.ndarray, side: float, left: bool):
        """The landmark trunk's crop of a detection as a region (mirrored for a left hand), and the
        detector's pass over that very crop when there is one (a right hand tracked by the same
        landmark model, mirrored as this side needs), else None. Without landmarks: the square ``centre``, ``side`` (pixels), unturned."""
        if d.keypoints_2d is None:
            return Region(float(centre[0]), float(centre[1]), side, side, 0.0, left), None
        if (d.seen is not None and d.tracked_region is not None and d.tracked_region.mirrored == left
                and d.seen.model == self.network.trunk_variant):
            return d.tracked_region, d.seen
        return region_from_landmarks(d.keypoints_2d, mirrored=left), None
