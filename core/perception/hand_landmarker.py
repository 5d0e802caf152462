"""Hands in regions of photos: MediaPipe's hand_landmark graph around handcap's torch landmark model.

Each region is cut from its photo as a 224 px crop (``core.perception.warp``: letterboxed to a square,
turned so the hand points up, edge pixels replicated), all crops of all photos go through the model in
batches, and its outputs are mapped back: image landmarks to photo pixels (letterbox removed, turned
and scaled by the region), world landmarks (metres, origin near the hand's centre) turned by the
region's rotation about the camera axis, as MediaPipe's WorldLandmarkProjectionCalculator does.

A mirrored region (``Region.mirrored``) is cut flipped left-right: the model then sees a left hand
as a right one; its outputs are flipped back (x of the landmarks, x of the world landmarks, and the
handedness score, 1 - p), so a ``Hand`` is the same either way. Each ``Hand`` keeps what the model saw
and said for its crop (``LandmarkPass``): a network on the landmark trunk reads it instead of running
the model on the same crop again (core.networks.landmark_trunk).

Handedness: the model's score is the probability of MediaPipe's label "Left", a label that assumes a
mirrored (selfie) image; in an ordinary photo that is the person's right hand, so ``Hand.side`` is
"right" when it passes 0.5. A region holds a hand when the presence score passes ``min_presence``
(MediaPipe Hands' min_tracking_confidence, 0.5).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

import numpy as np
import torch

from .regions import Region
from .warp import BORDER_REPLICATE, cut_regions, exact_float32, remove_letterbox, to_network_input

LANDMARK_INPUT_SIZE = 224     # pixels, square
MIN_PRESENCE = 0.5
PALM_AXIS = (0, 9, 10, 11, 12)   # wrist and middle finger: the same points for either side's reading of a hand


@dataclasses.dataclass
class LandmarkPass:
    """The landmark model's pass over one crop, as the model saw it (flipped when the region is
    mirrored): the crop and the raw outputs, float32."""

    model: str                # the model's variant ("full" | "lite")
    crop: np.ndarray          # (224, 224, 3) uint8 RGB, the model's input
    landmarks: np.ndarray     # (21, 3) crop pixels of that input; z on the same scale
    world: np.ndarray         # (21, 3) metres, the input's axes
    presence: float           # in [0, 1]
    handedness: float         # probability of MediaPipe's "Left" for the input as seen
    embedding: np.ndarray     # (C,) the head's feature map averaged (the landmark trunk's embedding)


@dataclasses.dataclass
class Hand:
    """One hand found in a region of a photo."""

    landmarks: np.ndarray     # (21, 3) x, y photo pixels; z depth from the wrist, same scale as x (pixels)
    world: np.ndarray         # (21, 3) metres, camera-aligned axes (x right, y down), origin near the hand's centre
    presence: float           # in [0, 1]
    right: float              # probability that it is the person's right hand (unmirrored photo)
    region: Region            # where it was looked for
    seen: Optional[LandmarkPass] = None   # the model's pass over the region's crop
    tracked: bool = False     # the region came from the last frame's landmarks (core.perception.hand_tracker)
    chain: int = -1           # video: one number per run of frames a region followed this hand from frame to frame

    @property
    def side(self) -> str:
        return "right" if self.right > 0.5 else "left"

    @property
    def side_score(self) -> float:
        """Confidence in ``side`` (MediaPipe's handedness score), in [0.5, 1]."""
        return max(self.right, 1.0 - self.right)


def same_palm(a: Hand, b: Hand, fraction: float) -> bool:
    """Whether two hands put the wrist and the middle finger (PALM_AXIS) within ``fraction`` of the
    larger hand's size (pixels) of each other, on average: one hand read twice (as either side)."""
    pa, pb = a.landmarks[list(PALM_AXIS), :2], b.landmarks[list(PALM_AXIS), :2]
    size = max(float(np.ptp(a.landmarks[:, :2], 0).max()), float(np.ptp(b.landmarks[:, :2], 0).max()), 1.0)
    return float(np.linalg.norm(pa - pb, axis=1).mean()) < fraction * size


class HandLandmarker:
    """``landmarker.look(rgb, regions) -> [Hand or None]`` and ``look_many`` for many photos at once.

    net: a ``HandLandmarkNet`` (224 px RGB in its ``INPUT_RANGE`` -> landmarks (B, 21, 3) crop pixels,
    presence (B,), handedness (B,), world (B, 21, 3) metres); batch_size: crops per forward pass;
    bf16: run the model under bfloat16 autocast (faster on a GPU, but it moved the landmarks by 0.67
    crop pixels on average, up to 3.4, so the engine keeps float32); otherwise true float32, on a GPU too.
    """

    def __init__(self, net: torch.nn.Module, min_presence: float = MIN_PRESENCE, batch_size: int = 64,
                 bf16: bool = False):
        self.net, self.min_presence, self.batch_size, self.bf16 = net, float(min_presence), batch_size, bf16
        self.device = next(net.parameters()).device

    def look(self, rgb: np.ndarray, regions: list[Region]) -> list[Optional[Hand]]:
        """(H, W, 3) uint8 RGB and regions of it -> per region the hand in it, or None."""
        return self.look_many([(rgb, regions)])[0]

    @torch.inference_mode()
    def look_many(self, work: list[tuple[np.ndarray, list[Region]]]) -> list[list[Optional[Hand]]]:
        """[(photo, its regions)] -> per photo, per region, the hand or None; one batch for all."""
        cuts = [cut_regions(rgb, regions, LANDMARK_INPUT_SIZE, BORDER_REPLICATE) for rgb, regions in work if regions]
        if not cuts:
            return [[] for _ in work]
        crops = np.concatenate([c for c, _ in cuts])
        paddings = np.concatenate([p for _, p in cuts])
        out = self.run(crops)
        results, i = [], 0
        for _, regions in work:
            found = []
            for region in regions:
                found.append(self._hand(out, i, region, paddings[i], crops[i]))
                i += 1
            results.append(found)
        return results

    @torch.inference_mode()
    def run(self, crops: np.ndarray) -> dict:
        """(N, 224, 224, 3) uint8 crops -> the model's outputs as float32 arrays: "landmarks" (N, 21, 3)
        crop pixels, "presence" (N,), "handedness" (N,), "world" (N, 21, 3) metres, "embedding" (N, C)
        the head's feature map averaged."""
        parts = []
        for start in range(0, len(crops), self.batch_size):
            images = to_network_input(crops[start:start + self.batch_size], self.net.INPUT_RANGE, self.device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16), exact_float32(self.device):
                o, maps = self.net(images, features=True)
            head = next(v for k, v in maps.items() if k.startswith("head_"))       # (B, C, 7, 7)
            parts.append([t.float().cpu() for t in (o.landmarks, o.presence, o.handedness, o.world, head.mean((2, 3)))])
        names = ("landmarks", "presence", "handedness", "world", "embedding")
        return {name: torch.cat([p[k] for p in parts]).numpy() for k, name in enumerate(names)}

    def _hand(self, out: dict, i: int, region: Region, padding: np.ndarray, crop: np.ndarray) -> Optional[Hand]:
        presence = float(out["presence"][i])
        if not presence > self.min_presence:
            return None
        seen = LandmarkPass(model=getattr(self.net, "variant", ""), crop=crop, landmarks=out["landmarks"][i],
                            world=out["world"][i], presence=presence, handedness=float(out["handedness"][i]),
                            embedding=out["embedding"][i])
        fractions = seen.landmarks.astype(np.float64) / LANDMARK_INPUT_SIZE   # (21, 3) fractions of the input
        local = remove_letterbox(fractions[:, :2], padding)                  # (region.to_image undoes a mirror)
        z = fractions[:, 2:] * region.width                                  # MediaPipe scales z like x
        world = seen.world.astype(np.float64)
        right = seen.handedness
        if region.mirrored:                                                  # the input was flipped left-right
            world = world * np.array([-1.0, 1.0, 1.0])
            right = 1.0 - right
        c, s = math.cos(region.rotation), math.sin(region.rotation)
        world = world @ np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])
        return Hand(landmarks=np.concatenate([region.to_image(local), z], axis=1), world=world, presence=presence,
                    right=right, region=region, seen=seen)
