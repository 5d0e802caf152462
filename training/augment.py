"""Raw sample -> crop sample (the contract in ``training/sample.py``): ``TrainTransform``, ``EvalTransform``.

Geometry (``core.crops``, shared with the engine). The crop box is a square around the 2D
keypoints' bounding box (side = ``margin`` x its longer side, centred on it); training jitters its
side and centre. One affine map, raw pixels -> crop pixels (pixel centres at integers in both),
does everything geometric:

    p' = (size / side) * R(angle) @ F @ (p - centre) + (size - 1) / 2,     F = diag(-1, 1) if flipped

and is applied with ``cv2.warpAffine`` to the image (bilinear) and the mask (bilinear, so crop masks
are soft in [0, 1]), and exactly to the keypoints. Outside the raw image the crop is black.
Output keypoints_2d are normalised: (p' + 0.5) * 2 / size - 1, so -1/+1 are the crop's edges.

3D targets are made root-relative (wrist at 0) and get the same in-plane linear map about the
camera z axis, L3 = [[R(angle) @ F, 0], [0, 1]]: x negated by a flip, then rotated about z. For the
rotation this is the usual approximation: exact (for the projection) when the crop centre is the
principal point, and close for the small off-axis angles of a hand crop; the weak-perspective
relation keypoints_2d ~= s * joints_3d[:, :2] + t holds either way to first order.
For has_mesh samples the vertices get L3 too and the pose follows: on a flip every joint's
axis-angle is mirrored (``mirror_axis_angle``; the mirrored hand of the mirrored model is the same
mesh), then the global orientation is pre-multiplied by the z rotation.

Sides. The network sees right hands: a left hand is always flipped (its crop is a right hand with
pose, vertices and 3D mirrored). ``is_left`` in a crop sample tells the side of the hand *in the
crop* (its mesh/pose are the mirrored model's when True), exactly as in a raw sample. Mirroring is
a bijection left <-> right, so for a right-hand-only network a "random horizontal flip" cannot add
anything: flipping a right hand and then canonicalising it back to the right gives back the same
crop. ``flip_prob`` therefore means: with this probability, mirror the canonical crop into a left
hand, labelled as the mirrored hand (is_left True, pose mirrored, 3D x negated). That suits side-
agnostic models (the baseline joint regressor, as in the FreiHAND report); keep it 0 (the default)
for the HAMR network, whose right-hand model cannot represent a left hand.

Appearance (training only, in this order): background replacement through the mask (has_mask
samples only; procedural noise/gradients or random crops of images from a folder), the geometric
crop, synthetic occluders (random polygons/ellipses with flat colour or noise texture; the mask
stays the hand's full silhouette, not its visible part), colour jitter (torchvision v2).
All randomness comes from torch's global generator, which DataLoader seeds per worker.
"""

from __future__ import annotations

import math
import os
from typing import Callable, Optional, Sequence

import cv2
import numpy as np
import torch

from core.hand_model.rotations import axis_angle_to_matrix, matrix_to_axis_angle, mirror_axis_angle
from core.torchvision_compat import torchvision  # noqa: F401  (makes torchvision importable on CPU torch)
from torchvision.transforms import v2

from core.crops import (CROP_MARGIN, crop_matrix, in_plane_linear, keypoint_box, normalize_image,  # noqa: F401
                        normalize_keypoints, upright_angle)

from .sample import ROOT

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
UPRIGHT_JITTER_DEG = 30.0  # rotation jitter about the upright crop for upright-crop networks (see TrainTransform)


def _uniform(low: float, high: float) -> float:
    return low + (high - low) * torch.rand(()).item()


def _chance(p: float) -> bool:
    return p > 0 and torch.rand(()).item() < p


def crop_sample(raw: dict, size: int, centre: np.ndarray, side: float, angle: float, flip: bool,
                image: Optional[np.ndarray] = None,
                appearance: Optional[Callable[[np.ndarray], np.ndarray]] = None,
                normalization: str = "imagenet") -> dict:
    """Cut one crop sample out of a raw sample.

    centre (2,) / side: crop box in raw pixels; angle: radians; flip: mirror horizontally.
    image: (H, W, 3) uint8 to use instead of raw["image"] (e.g. with a new background);
    appearance: applied to the (S, S, 3) uint8 crop before normalisation.
    normalization: the network's input normalisation (core.crops.normalize_image).
    """
    raw = {key: torch.as_tensor(value) for key, value in raw.items()}
    matrix = crop_matrix(np.asarray(centre, np.float64), side, size, angle, flip)
    if image is None:
        image = raw["image"].permute(1, 2, 0).numpy()
    crop = cv2.warpAffine(np.ascontiguousarray(image), matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    if appearance is not None:
        crop = appearance(crop)
    mask = cv2.warpAffine(raw["mask"].numpy().astype(np.float32), matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    keypoints = raw["keypoints_2d"].numpy().astype(np.float64) @ matrix[:, :2].T + matrix[:, 2]

    linear = in_plane_linear(angle, flip)                                   # (3, 3)
    root = raw["joints_3d"][ROOT].numpy().astype(np.float64)
    joints = (raw["joints_3d"].numpy() - root) @ linear.T
    pose, vertices = raw["pose"], raw["vertices"]
    if bool(raw["has_mesh"]):
        vertices = torch.from_numpy((raw["vertices"].numpy() - root) @ linear.T)
        pose = mirror_axis_angle(pose) if flip else pose.clone()
        rotation = torch.from_numpy(in_plane_linear(angle, False)).to(pose.dtype)
        pose[0] = matrix_to_axis_angle(rotation @ axis_angle_to_matrix(pose[0]))

    return {
        "image": normalize_image(crop, normalization),
        "mask": torch.from_numpy(np.clip(mask, 0.0, 1.0)),
        "keypoints_2d": torch.from_numpy(normalize_keypoints(keypoints, size)).float(),
        "joints_3d": torch.from_numpy(joints).float(),
        "vertices": vertices.float(),
        "pose": pose.float(),
        "betas": raw["betas"].float(),
        "is_left": torch.tensor(bool(raw["is_left"]) != flip),
        "has_mask": raw["has_mask"].bool(),
        "has_3d": raw["has_3d"].bool(),
        "has_mesh": raw["has_mesh"].bool(),
    }


class EvalTransform:
    """Deterministic crop: the keypoint box, no rotation (``upright``: turned upright by the keypoints,
    core.crops.upright_angle), left hands flipped to right."""

    def __init__(self, size: int = 128, margin: float = CROP_MARGIN, normalization: str = "imagenet",
                 upright: bool = False):
        self.size, self.margin, self.normalization, self.upright = size, margin, normalization, upright

    def __call__(self, raw: dict) -> dict:
        keypoints, flip = np.asarray(raw["keypoints_2d"]), bool(raw["is_left"])
        centre, side = keypoint_box(keypoints, self.margin)
        angle = upright_angle(keypoints, flip) if self.upright else 0.0
        return crop_sample(raw, self.size, centre, side, angle, flip, normalization=self.normalization)


class TrainTransform:
    """Random crop sample from a raw sample (see the module docstring for every step).

    rotation_deg: angle ~ U(-r, r) degrees; scale_jitter: side x U(1 - j, 1 + j);
    translation_jitter: centre + U(-j, j) x side per axis; color_jitter: (brightness, contrast,
    saturation, hue) for ``v2.ColorJitter`` or None; flip_prob: mirror the canonical crop into a left
    hand (0 for right-hand-model networks); occluder_prob / background_prob: chance of each;
    backgrounds: None (procedural only) or a folder of images, used for half of the replacements;
    normalization: the network's input normalisation (``NetworkConfig.input_normalization``);
    upright: turn the crop upright first (core.crops.upright_angle, for upright-crop networks), then
    rotate by U(-rotation_deg, rotation_deg) as jitter.
    """

    def __init__(self, size: int = 128, rotation_deg: float = 180.0, scale_jitter: float = 0.15,
                 translation_jitter: float = 0.1, color_jitter: Optional[Sequence[float]] = (0.4, 0.4, 0.4, 0.05),
                 flip_prob: float = 0.0, occluder_prob: float = 0.3, background_prob: float = 0.5,
                 backgrounds: Optional[str] = None, margin: float = CROP_MARGIN, normalization: str = "imagenet",
                 upright: bool = False):
        self.size, self.margin, self.normalization, self.upright = size, margin, normalization, upright
        self.rotation, self.scale_jitter, self.translation_jitter = math.radians(rotation_deg), scale_jitter, translation_jitter
        self.flip_prob, self.occluder_prob, self.background_prob = flip_prob, occluder_prob, background_prob
        self.color = v2.ColorJitter(*color_jitter) if color_jitter else None
        self.backgrounds = []
        if backgrounds is not None:
            self.backgrounds = sorted(os.path.join(backgrounds, n) for n in os.listdir(backgrounds)
                                      if n.lower().endswith(IMAGE_EXTENSIONS))
            if not self.backgrounds:
                raise ValueError(f"no background images ({', '.join(IMAGE_EXTENSIONS)}) in {backgrounds}")

    def __call__(self, raw: dict) -> dict:
        image = None
        if bool(raw["has_mask"]) and _chance(self.background_prob):
            image = replace_background(np.asarray(raw["image"]).transpose(1, 2, 0), np.asarray(raw["mask"]), self._background)
        centre, side = keypoint_box(np.asarray(raw["keypoints_2d"]), self.margin)
        side *= _uniform(1.0 - self.scale_jitter, 1.0 + self.scale_jitter)
        centre = centre + side * np.array([_uniform(-1, 1), _uniform(-1, 1)]) * self.translation_jitter
        flip = bool(raw["is_left"]) != _chance(self.flip_prob)
        angle = _uniform(-self.rotation, self.rotation)
        if self.upright:
            angle += upright_angle(np.asarray(raw["keypoints_2d"]), flip)
        return crop_sample(raw, self.size, centre, side, angle, flip, image=image, appearance=self._appearance,
                           normalization=self.normalization)

    def _background(self, height: int, width: int) -> np.ndarray:
        if self.backgrounds and _chance(0.5):
            return random_image_crop(self.backgrounds[torch.randint(len(self.backgrounds), ()).item()], height, width)
        return procedural_texture(height, width)

    def _appearance(self, crop: np.ndarray) -> np.ndarray:
        if _chance(self.occluder_prob):
            crop = add_occluders(crop)
        if self.color is not None:
            crop = self.color(torch.from_numpy(crop).permute(2, 0, 1)).permute(1, 2, 0).numpy()
        return np.ascontiguousarray(crop)


def replace_background(image: np.ndarray, mask: np.ndarray, make: Callable[[int, int], np.ndarray]) -> np.ndarray:
    """(H, W, 3) uint8 image, (H, W) 0/1 hand mask -> the hand over ``make(H, W)``, edges feathered by 1 px."""
    alpha = cv2.GaussianBlur(mask.astype(np.float32), (3, 3), 0)[..., None]
    return (alpha * image + (1.0 - alpha) * make(*mask.shape)).round().clip(0, 255).astype(np.uint8)


def procedural_texture(height: int, width: int) -> np.ndarray:
    """(H, W, 3) uint8: smooth random colour noise at a random scale, or a linear gradient, plus grain."""
    if _chance(0.5):
        cells = int(torch.randint(2, 17, ()))
        coarse = (torch.rand(cells, cells, 3) * 255).numpy().astype(np.float32)
        texture = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    else:
        angle = _uniform(0, 2 * math.pi)
        ramp = (np.cos(angle) * np.arange(width)[None, :] + np.sin(angle) * np.arange(height)[:, None])
        ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
        first, second = (torch.rand(2, 3) * 255).numpy()
        texture = first + ramp[..., None] * (second - first)
    grain = torch.randn(height, width, 3).numpy() * _uniform(0, 12)
    return (texture + grain).clip(0, 255).astype(np.uint8)


def random_image_crop(path: str, height: int, width: int) -> np.ndarray:
    """A random crop (half to all of the shorter side) of an image file, resized to (H, W, 3) uint8 RGB."""
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"cannot read background {path}")
    h, w = image.shape[:2]
    side = int(min(h, w) * _uniform(0.5, 1.0))
    y, x = int(torch.randint(h - side + 1, ())), int(torch.randint(w - side + 1, ()))
    patch = cv2.resize(image[y:y + side, x:x + side], (width, height), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(patch, cv2.COLOR_BGR2RGB)


def add_occluders(crop: np.ndarray, max_count: int = 3) -> np.ndarray:
    """Paint 1..max_count random polygons or ellipses (10-35 % of the crop wide) with a flat colour or a texture."""
    height, width = crop.shape[:2]
    out = crop.copy()
    for _ in range(int(torch.randint(1, max_count + 1, ()))):
        shape = np.zeros((height, width), np.uint8)
        centre = np.array([_uniform(0, width), _uniform(0, height)])
        radius = min(height, width) * _uniform(0.05, 0.18)
        if _chance(0.5):
            count = int(torch.randint(3, 9, ()))
            angles = np.sort(torch.rand(count).numpy()) * 2 * math.pi
            radii = radius * (0.5 + torch.rand(count).numpy())
            points = centre + np.stack([np.cos(angles), np.sin(angles)], 1) * radii[:, None]
            cv2.fillPoly(shape, [points.round().astype(np.int32)], 1)
        else:
            axes = (int(radius), int(radius * _uniform(0.3, 1.0)))
            cv2.ellipse(shape, tuple(int(c) for c in centre.round()), axes, _uniform(0, 180), 0, 360, 1, -1)
        fill = procedural_texture(height, width) if _chance(0.5) else (torch.rand(3) * 255).numpy().astype(np.uint8)
        out = np.where(shape[..., None] > 0, fill, out)
    return out.astype(np.uint8)
