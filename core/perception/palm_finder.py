"""Palms in a photo: MediaPipe's palm_detection graph around handcap's torch palm detector.

The photo is letterboxed into the detector's 192 px square (aspect ratio kept, zero padding), the
detector's 2016 anchors are decoded and merged by weighted non-maximum suppression
(``core.perception.ssd``), and the letterbox is removed: palms come out in photo pixels, best first.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from .ssd import PALM_INPUT_SIZE, PalmBoxes, decode_palms, palm_anchor_centres, weighted_nms
from .warp import BORDER_ZERO, cut_regions, exact_float32, remove_letterbox, to_network_input, whole_image


@dataclasses.dataclass
class Palm:
    """One palm found in a photo (pixels, x right, y down)."""

    box: np.ndarray          # (4,) x0, y0, x1, y1
    keypoints: np.ndarray    # (7, 2); 0 is the wrist, 2 the middle finger's base
    score: float             # in [0, 1]


class PalmFinder:
    """``finder(rgb) -> [Palm]`` (or ``finder.find_many(frames)`` in one forward pass).

    detector: a ``PalmDetector`` (192 px RGB in its ``INPUT_RANGE`` -> raw boxes (B, 2016, 18), raw
    score logits (B, 2016)); min_score: palms scoring less are dropped (MediaPipe Hands'
    min_detection_confidence).
    """

    def __init__(self, detector: torch.nn.Module, min_score: float = 0.5):
        self.detector, self.min_score = detector, float(min_score)
        self.device = next(detector.parameters()).device
        self.anchors = torch.from_numpy(palm_anchor_centres()).to(self.device)

    def __call__(self, rgb: np.ndarray) -> list[Palm]:
        return self.find_many([rgb])[0]

    @torch.inference_mode()
    def find_many(self, frames: list[np.ndarray]) -> list[list[Palm]]:
        """(H, W, 3) uint8 RGB frames (any sizes) -> per frame its palms, best first."""
        if not frames:
            return []
        inputs, paddings = zip(*(cut_regions(rgb, [whole_image(rgb)], PALM_INPUT_SIZE, BORDER_ZERO) for rgb in frames))
        images = to_network_input(np.concatenate(inputs), self.detector.INPUT_RANGE, self.device)
        with exact_float32(self.device):
            raw_boxes, raw_scores = self.detector(images)
        candidates = decode_palms(raw_boxes, raw_scores, self.anchors, self.min_score)
        return [self._to_photo(weighted_nms(c), padding[0], rgb.shape)
                for c, padding, rgb in zip(candidates, paddings, frames)]

    @staticmethod
    def _to_photo(palms: PalmBoxes, padding: np.ndarray, shape) -> list[Palm]:
        """Letterboxed-input fractions -> photo pixels."""
        scale = np.array([shape[1], shape[0]], np.float64)
        corners = remove_letterbox(palms.boxes.reshape(-1, 2, 2).astype(np.float64), padding) * scale
        keypoints = remove_letterbox(palms.keypoints.astype(np.float64), padding) * scale
        return [Palm(corners[i].reshape(4), keypoints[i], float(palms.scores[i])) for i in range(len(palms.scores))]
