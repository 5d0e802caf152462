"""Hands in regions of photos: MediaPipe's hand_landmark graph around handcap's torch landmark model.

Each region is cut from its photo as a 224 px crop (``core.perception.warp``: letterboxed to a square,
turned so the hand points up, edge pixels replicated), all crops of all photos go through the model in
batches, and its outputs are mapped back: image landmarks to photo pixels (letterbox removed, turned
and scaled by the region), world landmarks (metres, origin near the hand's centre) turned by the
region's rotation about the camera axis, as MediaPipe's WorldLandmarkProjectionCalculator does.

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


@dataclasses.dataclass
class Hand:
    """One hand found in a region of a photo."""

    landmarks: np.ndarray     # (21, 3) x, y photo pixels; z depth from the wrist, same scale as x (pixels)
    world: np.ndarray         # (21, 3) metres, camera-aligned axes (x right, y down), origin near the hand's centre
    presence: float           # in [0, 1]
    right: float              # probability that it is the person's right hand (unmirrored photo)
    region: Region            # where it was looked for

    @property
    def side(self) -> str:
        return "right" if self.right > 0.5 else "left"

    @property
    def side_score(self) -> float:
        """Confidence in ``side`` (MediaPipe's handedness score), in [0.5, 1]."""
        return max(self.right, 1.0 - self.right)


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
                found.append(self._hand(out, i, region, paddings[i]))
                i += 1
            results.append(found)
        return results

    @torch.inference_mode()
    def run(self, crops: np.ndarray) -> dict:
        """(N, 224, 224, 3) uint8 crops -> the model's outputs as float64 arrays: "landmarks" (N, 21, 3)
        crop pixels, "presence" (N,), "handedness" (N,), "world" (N, 21, 3) metres."""
        parts = []
        for start in range(0, len(crops), self.batch_size):
            images = to_network_input(crops[start:start + self.batch_size], self.net.INPUT_RANGE, self.device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16), exact_float32(self.device):
                o = self.net(images)
            parts.append([t.float().cpu() for t in (o.landmarks, o.presence, o.handedness, o.world)])
        names = ("landmarks", "presence", "handedness", "world")
        return {name: torch.cat([p[k] for p in parts]).double().numpy().reshape(len(crops), *shape)
                for k, (name, shape) in enumerate(zip(names, ((21, 3), (), (), (21, 3))))}

    def _hand(self, out: dict, i: int, region: Region, padding: np.ndarray) -> Optional[Hand]:
        presence = float(out["presence"][i])
        if not presence > self.min_presence:
            return None
        crop = out["landmarks"][i] / LANDMARK_INPUT_SIZE                     # (21, 3) fractions of the input
        local = remove_letterbox(crop[:, :2], padding)
        z = crop[:, 2:] * region.width                                       # MediaPipe scales z like x
        c, s = math.cos(region.rotation), math.sin(region.rotation)
        world = out["world"][i] @ np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])
        return Hand(landmarks=np.concatenate([region.to_image(local), z], axis=1), world=world, presence=presence,
                    right=float(out["handedness"][i]), region=region)
