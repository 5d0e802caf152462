"""The palm detector's SSD head, decoded as MediaPipe's palm_detection graph decodes it.

Anchors (MediaPipe's SsdAnchorsCalculator with the 192 px palm model's options): feature maps of
strides 8, 16, 16, 16 on the 192 px input; layers of one stride are merged, each layer brings two
anchors per cell (aspect ratio 1 and the interpolated scale), all of fixed size 1 (so only their
centres matter): 24 x 24 x 2 + 12 x 12 x 6 = 2016 anchors, cell centres at (i + 0.5) / cells.

Decoding (TensorsToDetectionsCalculator, x/y/w/h order, scale 192): box centre = raw / 192 + anchor
centre, box size = raw / 192, 7 keypoints = raw / 192 + anchor centre; score = sigmoid of the raw
logit clipped to +-100; boxes with a score under the threshold or a negative size are dropped.

Weighted non-maximum suppression (NonMaxSuppressionCalculator, WEIGHTED, IoU > 0.3): the best box
takes every remaining box that overlaps it by more than the threshold (itself included) and becomes
their score-weighted mean (box and keypoints), keeping its own score.

Coordinates here are fractions of the (letterboxed) 192 px input: x right, y down.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

PALM_INPUT_SIZE = 192                  # pixels, square
PALM_STRIDES = (8, 16, 16, 16)         # one per anchor layer; equal strides share a feature map
ANCHORS_PER_LAYER = 2                  # aspect ratio 1.0 + the interpolated-scale anchor
ANCHOR_OFFSET = 0.5                    # anchor centre inside its cell
PERSON_INPUT_SIZE = 224               # the person detector's input, pixels, square
PERSON_STRIDES = (8, 16, 32, 32, 32)  # its anchor layers: 28x28x2 + 14x14x2 + 7x7x6 = 2254 anchors
PALM_KEYPOINTS = 7                     # palm keypoints; 0 is the wrist, 2 the middle finger's base
SCORE_CLIP = 100.0                     # raw logits are clipped to +-this before the sigmoid
NMS_IOU = 0.3                          # boxes overlapping more than this are merged


def palm_anchor_centres(input_size: int = PALM_INPUT_SIZE, strides=PALM_STRIDES) -> np.ndarray:
    """(A, 2) anchor centres x, y as fractions of the input, in the model's output order (any SSD
    model of MediaPipe's with fixed-size anchors: the person detector's are ``(224, PERSON_STRIDES)``)."""
    centres, layer = [], 0
    while layer < len(strides):
        same = layer
        while same < len(strides) and strides[same] == strides[layer]:
            same += 1
        cells = int(np.ceil(input_size / strides[layer]))
        per_cell = ANCHORS_PER_LAYER * (same - layer)
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        grid = np.stack([(xs + ANCHOR_OFFSET) / cells, (ys + ANCHOR_OFFSET) / cells], axis=-1).reshape(-1, 1, 2)
        centres.append(np.repeat(grid, per_cell, axis=1).reshape(-1, 2))
        layer = same
    return np.concatenate(centres).astype(np.float32)


@dataclasses.dataclass
class PalmBoxes:
    """Decoded palm candidates of one image (fractions of the letterboxed input)."""

    boxes: np.ndarray       # (N, 4) x0, y0, x1, y1
    keypoints: np.ndarray   # (N, K, 2) x, y (K = 7 for palms)
    scores: np.ndarray      # (N,) in [0, 1]


def decode_palms(raw_boxes: torch.Tensor, raw_scores: torch.Tensor, anchors: torch.Tensor,
                 min_score: float, input_size: int = PALM_INPUT_SIZE) -> list[PalmBoxes]:
    """The detector's raw output for a batch -> per image its candidates scoring at least ``min_score``.

    raw_boxes: (B, A, 4 + 2K) x, y, w, h, then K keypoints x, y (input pixels, relative to the anchor;
    the palm detector's K is 7, the person detector's 4); raw_scores: (B, A) or (B, A, 1) logits;
    anchors: (A, 2) centres (``palm_anchor_centres``, or ``ssd_anchor_centres`` for another model).
    """
    raw_boxes, raw_scores = raw_boxes.float(), raw_scores.float().reshape(raw_boxes.shape[:2])
    anchors = anchors.to(raw_boxes.device)
    centre = raw_boxes[..., 0:2] / input_size + anchors                           # (B, A, 2)
    size = raw_boxes[..., 2:4] / input_size                                       # (B, A, 2)
    num_keypoints = (raw_boxes.shape[-1] - 4) // 2
    keypoints = raw_boxes[..., 4:4 + 2 * num_keypoints].reshape(*raw_boxes.shape[:2], num_keypoints, 2)
    keypoints = keypoints / input_size + anchors[:, None, :]                      # (B, A, 7, 2)
    scores = torch.sigmoid(raw_scores.clamp(-SCORE_CLIP, SCORE_CLIP))             # (B, A)
    boxes = torch.cat([centre - size / 2, centre + size / 2], dim=-1)            # (B, A, 4)
    keep = (scores >= min_score) & (size >= 0).all(-1)
    out = []
    for b in range(raw_boxes.shape[0]):
        index = keep[b].nonzero()[:, 0]
        out.append(PalmBoxes(boxes[b, index].cpu().numpy(), keypoints[b, index].cpu().numpy(),
                             scores[b, index].cpu().numpy()))
    return out


def box_iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4) x (M, 4) x0, y0, x1, y1 boxes -> (N, M) intersection over union (0 where the union is empty)."""
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = w * h
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def weighted_nms(palms: PalmBoxes, iou_threshold: float = NMS_IOU) -> PalmBoxes:
    """MediaPipe's weighted non-maximum suppression; the result is ordered by score, best first."""
    order = np.argsort(-palms.scores, kind="stable")
    boxes, keypoints, scores = palms.boxes[order], palms.keypoints[order], palms.scores[order]
    remaining = np.arange(len(scores))
    kept_boxes, kept_keypoints, kept_scores = [], [], []
    while len(remaining):
        best = remaining[0]
        overlap = box_iou_matrix(boxes[remaining], boxes[best:best + 1])[:, 0] > iou_threshold
        members = remaining[overlap]
        weights = scores[members][:, None]
        total = weights.sum()
        if len(members):
            kept_boxes.append((boxes[members] * weights).sum(0) / total)
            kept_keypoints.append((keypoints[members] * weights[:, :, None]).sum(0) / total)
        else:                                 # a box that does not overlap itself (empty): kept as it is
            kept_boxes.append(boxes[best])
            kept_keypoints.append(keypoints[best])
        kept_scores.append(scores[best])
        if not overlap.any():
            break                             # MediaPipe stops when a round removes nothing
        remaining = remaining[~overlap]
    if not kept_scores:
        return PalmBoxes(np.zeros((0, 4), np.float32), np.zeros((0, palms.keypoints.shape[1], 2), np.float32),
                         np.zeros(0, np.float32))
    return PalmBoxes(np.stack(kept_boxes), np.stack(kept_keypoints), np.asarray(kept_scores))
