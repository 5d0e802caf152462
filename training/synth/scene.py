"""What one synthetic sample shows: side, shape, pose, camera, placement, forearm, skin and light.

Sample ``index`` of ``(seed, split)`` draws from its own generator, seeded with
``(seed, split, index)``, so it is the same whoever renders it and however the work is split.
Two styles keep a held-out set honest: ``heldout`` uses settings that ``train`` never draws:

  setting            train                                  heldout
  focal length       250-450 and 600-1000 px (at 224 px)    450-600 px
  skin tone          the tone scale minus five narrow bands  only those five bands
  light colour       blackbody 2700-6500 K, faint tints      7000-12000 K, strong tints, a rim light
  backgrounds        noise, gradients, stripes, clutter      cells, marble/wood, bokeh (backgrounds.py)

Pose (PosePrior), shape (betas ~ N(0, 1) clipped at +/-2.5), side (50 % left), views (uniform
over rotations, except looking down the forearm at the hand) are drawn alike in both styles.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import torch

from core.hand_model import PosePrior, load_hand_model
from core.hand_model.rotations import mirror_axis_angle

from .mesh import Forearm, rotation_x, rotation_z
from .render import Lighting

SPLITS = {"train": 0, "heldout": 1}
REFERENCE_SIZE = 224  # focal lengths below are for 224-pixel images and scale with the image
FOCAL = {"train": ((250.0, 450.0), (600.0, 1000.0)), "heldout": ((450.0, 600.0),)}
KELVIN = {"train": (2700.0, 6500.0), "heldout": (7000.0, 12000.0)}
TINT = {"train": 0.03, "heldout": 0.15}     # largest per-channel tint of a light colour
WHITE_BALANCE = 0.5  # a camera's white balance leaves this fraction of a light's colour cast
# Skin tones in sRGB from light to dark (photographed skin, lit from the front); a tone t in [0, 9]
# interpolates them. Held-out tones are the bands |t - (k + 0.5)| < 0.2, k = 0, 2, 4, 6, 8.
SKIN_TONES = np.array([[241, 204, 180], [228, 182, 152], [214, 160, 126], [198, 142, 105], [176, 120, 84],
                       [150, 98, 66], [121, 78, 52], [95, 60, 41], [72, 47, 34], [56, 37, 28]]) / 255.0
HELDOUT_TONE_CENTRES = np.array([0.5, 2.5, 4.5, 6.5, 8.5])
HELDOUT_TONE_HALF_WIDTH = 0.2
PALM_SKIN = np.array([236, 178, 160]) / 255.0   # palms: lighter and pinker, most of all on dark skin
NAIL = np.array([235, 205, 200]) / 255.0
FILL_FRACTION = (0.4, 0.9)    # the hand's 2D box side over the image side
DISTANCE = (0.3, 1.0)         # metres, hand centre to camera, kept when fill and focal allow
MAX_ARM_TOWARD_CAMERA = 0.6   # views looking down the forearm (it would hide the hand) are redrawn
POSE_BLOCK = 64               # finger poses drawn together (see SceneSampler.finger_pose)
POSE_STREAM = 1_000_003       # keeps pose-block seeds apart from per-sample seeds


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def kelvin_to_rgb(kelvin: float) -> np.ndarray:
    """(3,) linear RGB of a blackbody at ``kelvin`` (Tanner Helland's fit), unit luminance."""
    t = kelvin / 100.0
    r = 255.0 if t <= 66 else 329.7 * (t - 60) ** -0.1332
    g = 99.47 * np.log(t) - 161.12 if t <= 66 else 288.12 * (t - 60) ** -0.0755
    b = 255.0 if t >= 66 else (0.0 if t <= 19 else 138.52 * np.log(t - 10) - 305.04)
    rgb = srgb_to_linear(np.clip([r, g, b], 0, 255) / 255.0)
    return rgb / (rgb @ np.array([0.2126, 0.7152, 0.0722]))


def skin_tone(t: float) -> np.ndarray:
    """(3,) sRGB skin colour at tone ``t`` in [0, 9] (0 lightest)."""
    k = min(int(t), 8)
    return SKIN_TONES[k] + (t - k) * (SKIN_TONES[k + 1] - SKIN_TONES[k])


@dataclasses.dataclass
class Skin:
    """Surface colours (linear RGB albedo) and texture of one hand and its forearm."""

    tone: float              # skin tone on the SKIN_TONES scale, 0 (lightest) .. 9
    back: np.ndarray         # (3,) back of the hand and forearm
    palm: np.ndarray         # (3,) palm side
    nail: np.ndarray         # (3,) nail beds
    cloth: np.ndarray        # (3,) sleeve
    specular: float          # skin specular strength (nails get more, cloth none)
    blotch: float            # relative amplitude of the smooth albedo variation
    waves: np.ndarray        # (3, 4) blotch waves: spatial frequency vector (rad/m, xyz) and phase
    speckle: float           # relative amplitude of the per-vertex albedo noise


@dataclasses.dataclass
class Scene:
    """Everything about sample ``index`` except the image-space parts (which draw from ``image_seed``)."""

    index: int
    split: str
    is_left: bool
    betas: np.ndarray        # (10,) float32
    pose: np.ndarray         # (16, 3) float32 axis-angle; row 0 = global orientation in camera space
    K: np.ndarray            # (3, 3) float32 pixels
    placement: np.ndarray    # (3,) uniforms in [0, 1): distance within its allowed range, box centre x, y
    forearm: Forearm
    skin: Skin
    lighting: Lighting
    image_seed: np.random.SeedSequence  # backgrounds, occluders and camera effects


class SceneSampler:
    """``sample(index) -> Scene`` for images of ``size`` pixels in style ``split``."""

    def __init__(self, split: str = "train", seed: int = 0, size: int = 224):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
        self.split, self.seed, self.size = split, int(seed), int(size)
        self.prior = PosePrior(load_hand_model("open", "right"))
        self._pose_block = (None, None)  # (block number, (POSE_BLOCK, 16, 3) right-hand finger poses)

    def finger_pose(self, index: int, is_left: bool) -> np.ndarray:
        """(16, 3) PosePrior sample of ``index`` (wrist row 0). Drawn POSE_BLOCK at a time (one
        prior call costs as much for 1 pose as for 64) from a generator seeded by the block; left
        hands take the mirrored right-hand pose (the prior of the mirrored model is exactly that)."""
        block, row = divmod(int(index), POSE_BLOCK)
        if self._pose_block[0] != block:
            state = np.random.SeedSequence([self.seed, SPLITS[self.split], POSE_STREAM, block]).generate_state(2, np.uint64)
            generator = torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))
            self._pose_block = (block, self.prior.sample(POSE_BLOCK, generator))
        pose = self._pose_block[1][row:row + 1]
        return (mirror_axis_angle(pose) if is_left else pose)[0].numpy()

    def sample(self, index: int) -> Scene:
        scene_seed, image_seed = np.random.SeedSequence([self.seed, SPLITS[self.split], int(index)]).spawn(2)
        rng = np.random.default_rng(scene_seed)
        is_left = bool(rng.random() < 0.5)
        pose = self.finger_pose(index, is_left)
        forearm = self._forearm(rng)
        pose[0] = self._view(rng, forearm)
        betas = np.clip(rng.standard_normal(10), -2.5, 2.5)
        return Scene(index=int(index), split=self.split, is_left=is_left, betas=betas.astype(np.float32),
                     pose=pose.astype(np.float32), K=self._intrinsics(rng), placement=rng.random(3),
                     forearm=forearm, skin=self._skin(rng), lighting=self._lighting(rng), image_seed=image_seed)

    def _intrinsics(self, rng: np.random.Generator) -> np.ndarray:
        ranges = FOCAL[self.split]
        widths = np.array([hi - lo for lo, hi in ranges])
        lo, hi = ranges[rng.choice(len(ranges), p=widths / widths.sum())]
        focal = rng.uniform(lo, hi) * self.size / REFERENCE_SIZE
        aspect = rng.uniform(0.995, 1.005)
        cx, cy = (self.size - 1) / 2 + rng.uniform(-0.03, 0.03, 2) * self.size
        return np.array([[focal, 0, cx], [0, focal * aspect, cy], [0, 0, 1]], np.float32)

    @staticmethod
    def _forearm(rng: np.random.Generator) -> Forearm:
        length = rng.uniform(0.06, 0.30)
        sleeve = rng.random() < 0.5
        return Forearm(length=length, bare=rng.uniform(0.02, length) if sleeve else length,
                       flare=rng.uniform(0.1, 0.35), sleeve_scale=rng.uniform(1.15, 1.5) if sleeve else 1.0,
                       flexion=rng.uniform(-0.6, 0.6), deviation=rng.uniform(-0.25, 0.25))

    @staticmethod
    def _view(rng: np.random.Generator, forearm: Forearm) -> np.ndarray:
        """(3,) axis-angle global orientation, uniform over rotations, redrawn while the forearm
        points at the camera (z component of its direction below -MAX_ARM_TOWARD_CAMERA)."""
        bend = rotation_x(forearm.flexion) @ rotation_z(forearm.deviation)
        while True:
            q = rng.standard_normal(4)
            w, x, y, z = q / np.linalg.norm(q)
            R = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                          [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                          [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
            if (R @ bend @ np.array([0.0, -1.0, 0.0]))[2] > -MAX_ARM_TOWARD_CAMERA:
                return cv2.Rodrigues(R)[0].ravel()

    def _skin(self, rng: np.random.Generator) -> Skin:
        if self.split == "heldout":
            t = rng.choice(HELDOUT_TONE_CENTRES) + rng.uniform(-HELDOUT_TONE_HALF_WIDTH, HELDOUT_TONE_HALF_WIDTH)
        else:
            t = rng.uniform(0, 9)
            while np.abs(t - HELDOUT_TONE_CENTRES).min() < HELDOUT_TONE_HALF_WIDTH:
                t = rng.uniform(0, 9)
        back = np.clip(skin_tone(t) * rng.uniform(0.96, 1.04, 3), 0, 1)
        palm = back + (0.15 + 0.3 * t / 9) * (PALM_SKIN - back)
        waves = np.concatenate([rng.standard_normal((3, 3)) * 120.0, rng.uniform(0, 2 * np.pi, (3, 1))], axis=1)
        return Skin(tone=float(t), back=srgb_to_linear(back), palm=srgb_to_linear(palm),
                    nail=srgb_to_linear(back + 0.5 * (NAIL - back)), cloth=srgb_to_linear(rng.random(3) ** 1.5),
                    specular=float(rng.uniform(0.03, 0.2) + 0.1 * t / 9), blotch=float(rng.uniform(0.02, 0.1)), waves=waves,
                    speckle=float(rng.uniform(0.0, 0.05)))

    def _light_colour(self, rng: np.random.Generator) -> np.ndarray:
        lo, hi = KELVIN[self.split]
        colour = 1 + WHITE_BALANCE * (kelvin_to_rgb(np.exp(rng.uniform(np.log(lo), np.log(hi)))) - 1)
        return colour * (1 + rng.uniform(-TINT[self.split], TINT[self.split], 3))

    def _lighting(self, rng: np.random.Generator) -> Lighting:
        """Key light from the camera's side and above, a fill, hemisphere ambient; held-out adds a
        rim light from behind. Directions in camera space (y down, z forward)."""
        def unit(v):
            return v / np.linalg.norm(v)

        key = unit(rng.standard_normal(3) * 0.8 + [0.0, -0.4, -1.0])
        fill = unit(-0.6 * key + rng.standard_normal(3) * 0.6 + [0.0, 0.0, -0.8])
        key_power = rng.uniform(0.7, 1.5)
        directions = [key, fill]
        colors = [key_power * self._light_colour(rng), key_power * rng.uniform(0.05, 0.4) * self._light_colour(rng)]
        if self.split == "heldout":
            directions.append(unit(rng.standard_normal(3) * 0.5 + [0.0, -0.3, 1.0]))
            colors.append(key_power * rng.uniform(0.4, 1.0) * self._light_colour(rng))
        ambient = rng.uniform(0.1, 0.4)
        up = unit(rng.standard_normal(3) * 0.3 + [0.0, -1.0, 0.0])
        ambient_up = ambient * self._light_colour(rng)
        ambient_down = ambient * rng.uniform(0.3, 0.8) * self._light_colour(rng)
        exposure = rng.uniform(0.75, 1.3) / (0.6 * key_power + ambient)
        return Lighting(directions=np.array(directions, np.float32), colors=np.array(colors, np.float32),
                        ambient_up=ambient_up, ambient_down=ambient_down, up=up, wrap=float(rng.uniform(0.1, 0.5)),
                        shininess=float(rng.uniform(8.0, 40.0)), exposure=float(exposure))
