"""People in a photo, and where their hands are: MediaPipe's pose and holistic graphs around handcap's
torch person detector, body-landmark network and hand re-crop network, for every person at once.

1. Person detector (``pose_detection_cpu``): the photo letterboxed into 224 px (zero border, values in
   [-1, 1]); its 2254 SSD anchors decoded (face box + 4 keypoints: mid-hip, a full-body size/rotation
   point, mid-shoulder, an upper-body point) and merged by weighted non-maximum suppression (IoU 0.3).
   MediaPipe's pose solution keeps the best detection only; here every one above ``min_score`` is kept,
   and the detector also looks at the photo's tiles (``core.perception.tiles``: people too small for
   the whole photo's 224 px); a tile's detection is kept where it scores at least 0.5 and its face box
   overlaps none already kept (IoU <= 0.3), the whole photo's first.
2. Body region (``pose_detection_to_roi``): centred on the mid-hip, turned so that mid-hip -> size point
   points up, side twice their distance, scaled by 1.25 (square).
3. Body landmarks (``pose_landmark_by_roi``): each region as a 256 px crop (letterboxed, replicated
   border), all people in one batch; a person is kept where the network's flag passes 0.5; landmarks
   refined by the heatmap (``RefineLandmarksFromHeatmapCalculator``: within a 7x7 window of the 64 px
   heatmap around each landmark, the sigmoid-weighted mean cell, when the window's largest sigmoid is at
   least 0.5), letterbox removed, mapped back to photo pixels. A person found twice (the whole photo
   and a tile) is kept once (``one_per_person``).
4. Hand regions (holistic ``hand_landmarks_from_pose``): for each side (holistic: only where the pose
   wrist is visible, > 0.1; here both, the region marked ``visible`` or not: a hand on a table or
   behind an object hides its wrist from the pose network but not from the hand network), the middle finger's base is guessed at (2 index + pinky) / 3; a square centred there, turned so that
   wrist -> that point points up, side twice their distance, moved -0.1 of its side along up and scaled
   by 2.7, is cut at 256 px and given to the re-crop network, whose two points (centre, then a point half
   a side away toward the wrist) give the hand's region: centred on the first, turned so that the second
   -> first points up, side twice their distance, moved -0.1 along up (``hand_recrop_by_roi``).

Sides are the person's own (BlazePose's "left wrist" is the person's left hand). Pixels of the photo
throughout (x right, y down); rotations as in ``core.perception.regions``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from .hand_recrop import HandRecropNet
from .pose_landmarks import LEFT_INDEX, LEFT_PINKY, LEFT_WRIST, RIGHT_INDEX, RIGHT_PINKY, RIGHT_WRIST
from .regions import Region, normalize_radians, transform_region, up_rotation
from .ssd import NMS_IOU, PERSON_INPUT_SIZE, PERSON_STRIDES, box_iou_matrix, decode_palms, palm_anchor_centres, weighted_nms
from .tiles import photo_tiles
from .warp import BORDER_REPLICATE, BORDER_ZERO, cut_regions, exact_float32, remove_letterbox, to_network_input, whole_image

MIN_PERSON_SCORE = 0.3             # person detections kept in the whole photo (MediaPipe Pose: 0.5; the body
                                   # flag filters after) ...
MIN_TILE_PERSON_SCORE = 0.5        # ... and in a tile (a tile cuts bodies: more half-people there)
MIN_PERSON_FLAG = 0.5              # ... and its pose-presence threshold
BODY_SCALE = 1.25                  # body region from a detection
HAND_FROM_POSE_SCALE, HAND_FROM_POSE_SHIFT_Y = 2.7, -0.1
RECROP_SHIFT_Y = -0.1
MIN_WRIST_VISIBILITY = 0.1         # holistic: a hand is looked for where its pose wrist is this visible
HEATMAP_KERNEL, HEATMAP_MIN_CONFIDENCE = 7, 0.5
POSE_INPUT_SIZE = 256
TORSO = (11, 12, 23, 24)           # shoulders, hips
SAME_PERSON, SAME_PERSON_IOU = 0.25, 0.5   # see one_per_person
SIDE_LANDMARKS = {"left": (LEFT_WRIST, LEFT_PINKY, LEFT_INDEX), "right": (RIGHT_WRIST, RIGHT_PINKY, RIGHT_INDEX)}


@dataclasses.dataclass
class Person:
    """One person found in a photo (pixels)."""

    score: float               # person detector's confidence in [0, 1]
    region: Region             # the body region the landmarks were read in
    landmarks: np.ndarray      # (33, 3) x, y pixels, z relative depth on the x scale
    visibility: np.ndarray     # (33,) probability that each landmark is visible
    presence: float            # the body-landmark network's person flag in [0, 1]

    def box(self) -> np.ndarray:
        """(4,) x0, y0, x1, y1 of the visible (> 0.5) landmarks (all when none is)."""
        points = self.landmarks[self.visibility > 0.5, :2] if (self.visibility > 0.5).any() else self.landmarks[:, :2]
        return np.concatenate([points.min(0), points.max(0)])


@dataclasses.dataclass
class HandRegion:
    """Where a person's hand is, for the hand landmark network."""

    region: Region
    person: int                # index into the people list
    side: str                  # "left" | "right": the person's own hand
    visible: bool = True       # its pose wrist's visibility passed MIN_WRIST_VISIBILITY


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -100.0, 100.0)))


def alignment_region(centre: np.ndarray, scale_point: np.ndarray, target_angle: float) -> Region:
    """MediaPipe's AlignmentPointsRectsCalculator in pixels: a square centred on ``centre``, side twice
    the distance to ``scale_point``, turned so that centre -> scale point lies at ``target_angle``
    (radians; pi / 2: pointing up in the crop)."""
    side = 2.0 * float(np.linalg.norm(scale_point - centre))
    rotation = normalize_radians(target_angle - math.atan2(-(scale_point[1] - centre[1]), scale_point[0] - centre[0]))
    return Region(float(centre[0]), float(centre[1]), side, side, rotation)


def body_region(keypoints: np.ndarray) -> Region:
    """(4, 2) person-detector keypoints, pixels -> the body region (mid-hip -> size point up, x1.25)."""
    return transform_region(alignment_region(keypoints[0], keypoints[1], math.pi / 2), BODY_SCALE, 0.0)


def hand_region_from_pose(wrist: np.ndarray, pinky: np.ndarray, index: np.ndarray,
                          scale: float = HAND_FROM_POSE_SCALE) -> Region:
    """Pose wrist, pinky and index (2,) pixels -> the loose region the re-crop network looks in."""
    middle = (2.0 * index + pinky) / 3.0
    side = 2.0 * float(np.linalg.norm(middle - wrist))
    raw = Region(float(middle[0]), float(middle[1]), side, side, up_rotation(wrist, middle))
    return transform_region(raw, scale, HAND_FROM_POSE_SHIFT_Y)


def region_from_recrop(centre: np.ndarray, scale_point: np.ndarray) -> Region:
    """The re-crop network's two points (2,) pixels -> the hand's region."""
    return transform_region(alignment_region(centre, scale_point, -math.pi / 2), 1.0, RECROP_SHIFT_Y)


def refine_from_heatmap(points: np.ndarray, heatmap: np.ndarray, kernel: int = HEATMAP_KERNEL,
                        min_confidence: float = HEATMAP_MIN_CONFIDENCE) -> np.ndarray:
    """(L, 2) landmarks as fractions of the crop and its (H, W, L) heatmap logits -> refined (L, 2):
    in a ``kernel`` window around each landmark's cell, the sigmoid-weighted mean of the cell indices
    divided by the heatmap size (as MediaPipe computes it), where the window's largest sigmoid reaches
    ``min_confidence``."""
    height, width, _ = heatmap.shape
    out = points.copy()
    offset = (kernel - 1) // 2
    for k, (x, y) in enumerate(points):
        col, row = int(x * width), int(y * height)
        if not (0 <= col < width and 0 <= row < height):
            continue
        rows = slice(max(0, row - offset), min(height, row + offset + 1))
        cols = slice(max(0, col - offset), min(width, col + offset + 1))
        confidence = sigmoid(heatmap[rows, cols, k].astype(np.float64))
        total = confidence.sum()
        if confidence.max() >= min_confidence and total > 0:
            r, c = np.mgrid[rows, cols]
            out[k] = [(c * confidence).sum() / total / width, (r * confidence).sum() / total / height]
    return out


def one_per_person(people: list[Person], same: float = SAME_PERSON) -> list[Person]:
    """The people of a photo without repeats (a person found in the whole photo and in tiles): two are
    one where their shoulders and hips (landmarks 11, 12, 23, 24) lie, on average, within ``same`` of
    the larger one's shoulder-to-hip length, or where the boxes of their visible landmarks overlap by
    IoU > SAME_PERSON_IOU; the earlier (whole photo, higher score) stays."""
    kept: list[Person] = []
    for person in people:
        torso = person.landmarks[list(TORSO), :2]
        repeat = False
        for other in kept:
            other_torso = other.landmarks[list(TORSO), :2]
            length = max(_torso_length(torso), _torso_length(other_torso), 1.0)
            if (np.linalg.norm(torso - other_torso, axis=1).mean() < same * length
                    or box_iou_matrix(person.box()[None], other.box()[None])[0, 0] > SAME_PERSON_IOU):
                repeat = True
                break
        if not repeat:
            kept.append(person)
    return kept


def _torso_length(torso: np.ndarray) -> float:
    """(4, 2) left/right shoulder, left/right hip -> the distance between their midpoints."""
    return float(np.linalg.norm(torso[:2].mean(0) - torso[2:].mean(0)))


class PersonFinder:
    """``finder(rgb) -> [Person]`` and ``finder.hand_regions(rgb, people) -> [HandRegion]``.

    detector: a ``PoseDetector``; landmarks: a ``PoseLandmarkNet``; recrop: a ``HandRecropNet``;
    min_score: person detections scoring less are dropped; max_people: at most this many (best first).
    """

    def __init__(self, detector: torch.nn.Module, landmarks: torch.nn.Module, recrop: HandRecropNet,
                 min_score: float = MIN_PERSON_SCORE, max_people: int = 64, tiles: bool = True):
        self.detector, self.landmarks, self.recrop, self.tiles = detector, landmarks, recrop, tiles
        self.min_score, self.max_people = float(min_score), int(max_people)
        self.device = next(detector.parameters()).device
        self.anchors = torch.from_numpy(palm_anchor_centres(PERSON_INPUT_SIZE, PERSON_STRIDES)).to(self.device)

    def __call__(self, rgb: np.ndarray) -> list[Person]:
        return self.people(rgb, self.detect(rgb))

    @torch.inference_mode()
    def detect(self, rgb: np.ndarray) -> list[tuple[float, np.ndarray]]:
        """(H, W, 3) uint8 RGB -> every person detection, the whole photo's first, each best first:
        (score, (4, 2) keypoints, pixels)."""
        tiles = photo_tiles(*rgb.shape[:2]) if self.tiles else []
        views = [rgb] + [t.cut(rgb) for t in tiles]
        offsets = [np.zeros(2)] + [np.array([t.x0, t.y0], np.float64) for t in tiles]
        cuts = [cut_regions(view, [whole_image(view)], PERSON_INPUT_SIZE, BORDER_ZERO) for view in views]
        images = to_network_input(np.concatenate([c for c, _ in cuts]), self.detector.INPUT_RANGE, self.device)
        with exact_float32(self.device):
            raw_boxes, raw_scores = self.detector(images)
        decoded = decode_palms(raw_boxes, raw_scores, self.anchors, self.min_score, PERSON_INPUT_SIZE)
        kept_boxes, out = np.zeros((0, 4)), []
        for view, (_, padding), offset, found in zip(views, cuts, offsets, decoded):
            found = weighted_nms(found)
            scale = np.array([view.shape[1], view.shape[0]], np.float64)
            keypoints = remove_letterbox(found.keypoints.astype(np.float64), padding[0]) * scale + offset
            boxes = (remove_letterbox(found.boxes.reshape(-1, 2, 2).astype(np.float64), padding[0]) * scale
                     + offset).reshape(-1, 4)
            for i in range(len(found.scores)):
                if offset.any() and found.scores[i] < MIN_TILE_PERSON_SCORE:
                    continue
                if len(kept_boxes) and box_iou_matrix(boxes[i:i + 1], kept_boxes).max() > NMS_IOU:
                    continue
                kept_boxes = np.concatenate([kept_boxes, boxes[i:i + 1]])
                out.append((float(found.scores[i]), keypoints[i]))
        return out[:self.max_people]

    @torch.inference_mode()
    def people(self, rgb: np.ndarray, detections: list[tuple[float, np.ndarray]]) -> list[Person]:
        """Body landmarks of each detection (one batch); people whose flag is under MIN_PERSON_FLAG are dropped."""
        if not detections:
            return []
        regions = [body_region(keypoints) for _, keypoints in detections]
        crops, paddings = cut_regions(rgb, regions, POSE_INPUT_SIZE, BORDER_REPLICATE)
        with exact_float32(self.device):
            out = self.landmarks(to_network_input(crops, self.landmarks.INPUT_RANGE, self.device))
        raw, flags, heatmaps = (t.float().cpu().numpy() for t in (out.landmarks, out.flag, out.heatmap))
        people = []
        for i, ((score, _), region) in enumerate(zip(detections, regions)):
            if not flags[i] > MIN_PERSON_FLAG:
                continue
            points = refine_from_heatmap(raw[i, :33, :2] / POSE_INPUT_SIZE, heatmaps[i])
            local = remove_letterbox(points.astype(np.float64), paddings[i])
            z = raw[i, :33, 2:3] / POSE_INPUT_SIZE * region.width
            people.append(Person(score=score, region=region,
                                 landmarks=np.concatenate([region.to_image(local), z], axis=1),
                                 visibility=sigmoid(raw[i, :33, 3].astype(np.float64)), presence=float(flags[i])))
        return one_per_person(people)

    @torch.inference_mode()
    def hand_regions(self, rgb: np.ndarray, people: list[Person]) -> list[HandRegion]:
        """Both hands of each person, re-cropped by the re-crop network (one batch)."""
        loose = []
        for p, person in enumerate(people):
            for side, (wrist, pinky, index) in SIDE_LANDMARKS.items():
                points = person.landmarks[:, :2]
                region = hand_region_from_pose(points[wrist], points[pinky], points[index])
                if region.width >= 1.0:
                    loose.append(HandRegion(region, p, side, bool(person.visibility[wrist] > MIN_WRIST_VISIBILITY)))
        if not loose:
            return []
        crops, paddings = cut_regions(rgb, [h.region for h in loose], self.recrop.INPUT_SIZE, BORDER_REPLICATE)
        with exact_float32(self.device):
            points = self.recrop(to_network_input(crops, self.recrop.INPUT_RANGE, self.device)).float().cpu().numpy()
        out = []
        for hand, crop_points, padding in zip(loose, points, paddings):
            image_points = hand.region.to_image(remove_letterbox(crop_points.astype(np.float64) / self.recrop.INPUT_SIZE, padding))
            region = region_from_recrop(image_points[0], image_points[1])
            if region.width >= 1.0:
                out.append(dataclasses.replace(hand, region=region))
        return out
