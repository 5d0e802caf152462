"""What one synthetic sample shows: hand side, shape, pose, camera, placement, skin and light.

Everything is drawn from a numpy Generator seeded by (seed, sample index), so sample i of a
dataset is the same image however many workers render it. Two styles keep a held-out set
honest: ``train`` and ``heldout`` use disjoint skin palettes, light colours, focal-length
ranges and background families (see backgrounds.py).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from core.hand_model import HandLayer, PosePrior, load_hand_model

from .render import Lighting

# Skin albedos (linear-ish RGB in [0, 1]) from light to dark; held-out tones sit between them.
TRAIN_SKIN = np.array([[0.95, 0.80, 0.70], [0.87, 0.66, 0.53], [0.76, 0.55, 0.42], [0.62, 0.42, 0.30],
                       [0.47, 0.31, 0.22], [0.33, 0.21, 0.15], [0.91, 0.72, 0.62], [0.55, 0.37, 0.27]])
HELDOUT_SKIN = np.array([[0.98, 0.86, 0.78], [0.82, 0.60, 0.48], [0.69, 0.48, 0.36], [0.40, 0.26, 0.18],
                         [0.27, 0.17, 0.12]])
STYLES = {
    #            focal length as a multiple of the image side, light colour temperature range
    "train": {"focal": (1.1, 4.5), "skin": TRAIN_SKIN, "warmth": (-0.25, 0.25)},
    "heldout": {"focal": (0.8, 1.1), "skin": HELDOUT_SKIN, "warmth": (0.25, 0.45)},
}


@dataclasses.dataclass
class HandScene:
    """One posed hand in front of a pinhole camera, with everything needed to render it."""

    is_left: bool
    betas: np.ndarray        # (10,)
    pose: np.ndarray         # (16, 3) axis-angle, global orientation in camera space
    transl: np.ndarray       # (3,) metres
    K: np.ndarray            # (3, 3) pixels
    vertices: np.ndarray     # (V, 3) metres, camera space
    keypoints: np.ndarray    # (21, 3) metres, camera space
    albedo: np.ndarray       # (V, 3)
    lighting: Lighting


class SceneSampler:
    """Draws HandScenes for images of ``size`` x ``size`` pixels in a given style."""

    def __init__(self, size: int, style: str = "train"):
        if style not in STYLES:
            raise ValueError(f"style must be one of {sorted(STYLES)}, got {style!r}")
        self.size, self.style = size, STYLES[style]
        self.models = {side: load_hand_model("open", side) for side in ("right", "left")}
        self.layers = {side: HandLayer(m) for side, m in self.models.items()}
        self.priors = {side: PosePrior(m) for side, m in self.models.items()}

    @torch.no_grad()
    def sample(self, rng: np.random.Generator) -> HandScene:
        side = "left" if rng.random() < 0.5 else "right"
        torch_gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        pose = self.priors[side].sample(1, torch_gen, global_orient=True)          # (1, 16, 3)
        betas = torch.from_numpy(np.clip(rng.normal(size=(1, 10)), -2.5, 2.5).astype(np.float32))
        posed = self.layers[side](betas, pose)                                     # at the origin
        size = self.size
        focal = size * rng.uniform(*self.style["focal"])
        K = np.array([[focal, 0, size / 2 - 0.5 + rng.normal(0, 2)],
                      [0, focal, size / 2 - 0.5 + rng.normal(0, 2)], [0, 0, 1]], np.float32)
        keypoints = posed.keypoints[0].numpy()
        vertices = posed.vertices[0].numpy()
        transl = self._place(rng, vertices, keypoints.mean(0), K)
        vertices = vertices + transl
        skin = self.style["skin"][rng.integers(len(self.style["skin"]))]
        albedo = np.clip(skin * rng.uniform(0.85, 1.15) + rng.normal(0, 0.02, size=(len(vertices), 3)), 0, 1)
        return HandScene(is_left=side == "left", betas=betas[0].numpy(), pose=pose[0].numpy(), transl=transl,
                         K=K, vertices=vertices.astype(np.float32), keypoints=(keypoints + transl).astype(np.float32),
                         albedo=albedo.astype(np.float32), lighting=self._lighting(rng))

    def _place(self, rng: np.random.Generator, vertices: np.ndarray, centre: np.ndarray, K: np.ndarray) -> np.ndarray:
        """(3,) translation putting the hand's projected box at a random scale (40-85 % of the
        image side) and position, wholly inside the image. vertices (V, 3), centre (3,) metres."""
        size, focal = self.size, K[0, 0]
        fill = rng.uniform(0.4, 0.85)
        depth = focal * np.ptp(vertices[:, :2], axis=0).max() / (fill * size)
        for _ in range(3):  # perspective makes the box depend on depth: refine
            low, high = self._extent(vertices, centre, depth, focal)
            depth = float(np.clip(depth * (high - low).max() / (fill * size), 0.15, 3.0))
        low, high = self._extent(vertices, centre, depth, focal)
        principal = K[:2, 2]
        lowest, highest = 1 - principal - low, size - 2 - principal - high   # where the centre may go, pixels
        shift = np.where(lowest < highest, lowest + rng.random(2) * (highest - lowest), (lowest + highest) / 2)
        return (np.array([shift[0] * depth / focal, shift[1] * depth / focal, depth]) - centre).astype(np.float32)

    @staticmethod
    def _extent(vertices: np.ndarray, centre: np.ndarray, depth: float, focal: float):
        """((2,), (2,)) pixel offsets of the mesh's projected box from the projection of ``centre``
        when ``centre`` sits on the optical axis at ``depth``."""
        points = vertices - centre + np.array([0, 0, depth])
        pixels = points[:, :2] / np.maximum(points[:, 2:3], 0.02) * focal
        return pixels.min(0), pixels.max(0)

    def _lighting(self, rng: np.random.Generator) -> Lighting:
        direction = rng.normal(size=3)
        direction[2] = -abs(direction[2]) - 0.3              # mostly from the camera's side
        direction /= np.linalg.norm(direction)
        warmth = rng.uniform(*self.style["warmth"])
        color = np.array([1.0 + warmth, 1.0, 1.0 - warmth]) * rng.uniform(0.6, 1.1)
        ambient = np.full(3, rng.uniform(0.15, 0.45)) * np.array([1.0, 1.0, 1.0 + rng.uniform(-0.1, 0.1)])
        return Lighting(direction=direction, color=color, ambient=ambient,
                        specular=float(rng.uniform(0.0, 0.3)), shininess=float(rng.uniform(5, 40)))
