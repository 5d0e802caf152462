"""Occluders: objects drawn over part of the hand (blobs, polygons, sticks like pens, cards).

Each is anchored at a random hand keypoint so that it really overlaps the hand, sized relative
to the hand's 2D box, and coloured flat under a shading ramp or textured with a procedural
background of the sample's style. An occluder that would hide more than ``MAX_HIDDEN`` of the
hand (together with those already drawn) is left out. The sample's mask then shows only the
visible hand; keypoints of hidden joints stay in the ground truth.
"""

from __future__ import annotations

import cv2
import numpy as np

from .backgrounds import Backgrounds, random_colours

PROBABILITY = 0.5   # of a sample having occluders
MAX_COUNT = 3
MAX_HIDDEN = 0.5    # largest fraction of the hand's pixels the occluders may hide


def occluder_shape(rng: np.random.Generator, size: int, anchor: np.ndarray, extent: float) -> np.ndarray:
    """(size, size) uint8 alpha (255 = opaque, anti-aliased) of one shape near ``anchor`` (2,)
    pixels, about ``extent`` pixels across."""
    alpha = np.zeros((size, size), np.uint8)
    centre = anchor + rng.normal(0, 0.3, 2) * extent
    kind = rng.integers(4)
    if kind == 0:    # blob
        axes = (max(1, int(extent / 2)), max(1, int(extent / 2 * rng.uniform(0.3, 1.0))))
        cv2.ellipse(alpha, tuple(int(c) for c in centre), axes, rng.uniform(0, 180), 0, 360, 255, -1, cv2.LINE_AA)
    elif kind == 1:  # irregular polygon
        angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 9))))
        radii = extent / 2 * rng.uniform(0.4, 1.0, (len(angles), 1))
        points = centre + np.stack([np.cos(angles), np.sin(angles)], 1) * radii
        cv2.fillPoly(alpha, [np.round(points * 4).astype(np.int32)], 255, cv2.LINE_AA, shift=2)
    elif kind == 2:  # stick: pen, cable, handle; long and thin, through the anchor
        direction = rng.normal(size=2)
        direction *= extent * rng.uniform(1.0, 2.5) / np.linalg.norm(direction)
        a, b = centre - direction, centre + direction
        cv2.line(alpha, tuple(int(c) for c in a), tuple(int(c) for c in b), 255,
                 max(2, int(extent * rng.uniform(0.08, 0.3))), cv2.LINE_AA)
    else:            # rectangle: a card, a phone, a box
        box = ((float(centre[0]), float(centre[1])), (float(extent), float(extent * rng.uniform(0.3, 1.2))),
               float(rng.uniform(0, 180)))
        cv2.fillPoly(alpha, [np.round(cv2.boxPoints(box) * 4).astype(np.int32)], 255, cv2.LINE_AA, shift=2)
    return alpha


def occluder_look(rng: np.random.Generator, width: int, height: int, backgrounds: Backgrounds,
                  index: int) -> np.ndarray:
    """(height, width, 3) uint8 colours of an occluder of sample ``index``: a texture, or a flat
    colour under a linear shading ramp."""
    if rng.random() < 0.4:
        return backgrounds.texture(rng, index, width, height)
    angle = rng.uniform(0, 2 * np.pi)
    x, y = np.linspace(-1, 1, width, dtype=np.float32), np.linspace(-1, 1, height, dtype=np.float32)
    ramp = 1.0 + (np.cos(angle) * x[None, :] + np.sin(angle) * y[:, None]) * rng.uniform(0.1, 0.4)
    return np.clip(random_colours(rng, 1)[0] * 255 * ramp[..., None], 0, 255).astype(np.uint8)


def add_occluders(rng: np.random.Generator, image: np.ndarray, hand: np.ndarray, keypoints_2d: np.ndarray,
                  backgrounds: Backgrounds, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw 0..MAX_COUNT occluders over ``image`` (S, S, 3) uint8, in place.

    hand (S, S) uint8 hand coverage (255 = covered), keypoints_2d (21, 2) pixels. Returns
    (image, occluder alpha (S, S) uint8): the hand stays visible where ``hand * (255 - alpha)`` is high.
    """
    size = image.shape[0]
    total = np.zeros((size, size), np.uint8)
    if rng.random() >= PROBABILITY:
        return image, total
    hand_pixels = hand >= 128
    hand_area = max(int(np.count_nonzero(hand_pixels)), 1)
    box = keypoints_2d.max(0) - keypoints_2d.min(0)
    for _ in range(int(rng.integers(1, MAX_COUNT + 1))):
        anchor = keypoints_2d[rng.integers(len(keypoints_2d))]
        alpha = occluder_shape(rng, size, anchor, float(np.linalg.norm(box)) * rng.uniform(0.15, 0.5))
        x, y, w, h = cv2.boundingRect(alpha)
        combined = cv2.max(total, alpha)
        if w == 0 or np.count_nonzero(hand_pixels & (combined >= 128)) > MAX_HIDDEN * hand_area:
            continue
        look = occluder_look(rng, w, h, backgrounds, index)
        weight = alpha[y:y + h, x:x + w].astype(np.float32) * (1 / 255)
        image[y:y + h, x:x + w] = cv2.blendLinear(look, image[y:y + h, x:x + w], weight, 1 - weight)
        total = combined
    return image, total
