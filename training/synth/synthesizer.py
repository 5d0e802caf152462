"""From sample indices to finished samples: pose the hands (batched), place them in front of the
camera, build the forearm, shade and render, composite over a background, add occluders and
camera effects, and package the exact ground truth as a raw sample (training/sample.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools

import cv2
import numpy as np
import torch

from core.hand_model import HandLayer, load_hand_model

from .backgrounds import Backgrounds
from .mesh import HandMesh, vertex_normals
from .occluders import add_occluders
from .render import Draw, Renderer, RenderOutput
from .scene import DISTANCE, FILL_FRACTION, Scene, SceneSampler, Skin

NAIL_SPECULAR = 0.4
MARGIN = 2.0  # pixels kept between the hand's box and the image border
LENS_BLUR = (0.3, 0.7)  # sigma (pixels) of the lens blur applied to the rendered hand: soft, not jagged, edges
NOISE_SEED = 3_000_017
NOISE_LEVELS = (0.0, 2.0, 4.0, 6.0)  # sensor noise sigmas, 0-255 units


@dataclasses.dataclass
class Rendered:
    """One finished sample, with what the contract does not carry (for writers and debugging)."""

    sample: dict             # the raw sample (training/sample.py)
    scene: Scene
    transl: np.ndarray       # (3,) float32 metres: layer(betas, pose, transl) reproduces the sample


def place_hand(vertices: np.ndarray, K: np.ndarray, size: int, placement: np.ndarray) -> np.ndarray:
    """(3,) translation for a posed hand ``vertices`` (V, 3) (camera orientation, any position).

    The side of the hand's projected 2D box becomes a fraction of ``size`` in FILL_FRACTION, drawn
    among those that put the hand at a distance in DISTANCE (if the focal length allows any), and
    the box lands wholly inside the image at a random position. ``placement`` (3,) uniforms in
    [0, 1) pick the fill (log scale), x and y.
    """
    points = np.ascontiguousarray(vertices.T, np.float64)                      # (3, V)
    low, high = points.min(1), points.max(1)
    focal, principal = np.diag(K)[:2].astype(np.float64), K[:2, 2].astype(np.float64)
    extent = float((high - low)[:2].max())
    fill_at = [focal[0] * extent / (d * size) for d in DISTANCE[::-1]]         # fills at the far, near distance
    lo, hi = max(fill_at[0], FILL_FRACTION[0]), min(fill_at[1], FILL_FRACTION[1])
    if lo > hi:
        lo = hi = float(np.clip(fill_at[0] if fill_at[0] > FILL_FRACTION[1] else fill_at[1], *FILL_FRACTION))
    box_side = size * lo * (hi / lo) ** placement[0]
    middle = (low + high) / 2
    centre = np.array([0.0, 0.0, focal[0] * extent / box_side])                # where ``middle`` goes
    slack = max((size - 1 - 2 * MARGIN - box_side) / 2, 0.0)
    target = (size - 1) / 2 + (2 * placement[1:] - 1) * slack                   # box centre, pixels
    for _ in range(4):  # perspective: the box depends on where the hand is; converge on place and size
        transl = centre - middle
        pixels = (points[:2] + transl[:2, None]) / (points[2] + transl[2]) * focal[:, None] + principal[:, None]
        box_low, box_high = pixels.min(1), pixels.max(1)
        centre[:2] += (target - (box_low + box_high) / 2) * centre[2] / focal   # shift at this depth
        centre *= (box_high - box_low).max() / box_side                         # along the ray: resize
    return (centre - middle).astype(np.float32)


def surface(mesh: HandMesh, skin: Skin, texture_pos: np.ndarray, rng: np.random.Generator):
    """Per-vertex albedo (N, 3) linear RGB and specular strength (N,) of hand + forearm.

    texture_pos (N, 3) rest-frame positions (metres) that carry the smooth blotches."""
    hand = mesh.num_hand
    palm = np.concatenate([mesh.palm, np.zeros(len(texture_pos) - hand, np.float32)])[:, None]
    albedo = skin.back + palm * (skin.palm - skin.back)
    phase = texture_pos @ skin.waves[:, :3].T + skin.waves[:, 3]                     # (N, 3)
    albedo = albedo * (1 + skin.blotch * np.sin(phase).mean(1, keepdims=True)
                       + skin.speckle * rng.standard_normal((len(texture_pos), 1)))
    nail = mesh.nail[:, None]
    albedo[:hand] += nail * (skin.nail - albedo[:hand])
    albedo[hand:][mesh.cloth] = skin.cloth
    specular = np.full(len(texture_pos), skin.specular, np.float32)
    specular[:hand] += mesh.nail * (NAIL_SPECULAR - skin.specular)
    specular[hand:][mesh.cloth] = 0.0
    return np.clip(albedo, 0, 1).astype(np.float32), specular


@functools.lru_cache(maxsize=2)
def noise_fields(size: int) -> np.ndarray:
    """(len(NOISE_LEVELS), 2 * size, 2 * size, 3) int16 Gaussian sensor noise (sigma in 0-255 units
    per level), the same in every process: drawing fresh noise per image would cost more than
    rendering it, so images take random crops of these."""
    unit = np.random.default_rng(NOISE_SEED).standard_normal((2 * size, 2 * size, 3), dtype=np.float32)
    return np.stack([np.round(unit * sigma) for sigma in NOISE_LEVELS]).astype(np.int16)


def camera_effects(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Occasional defocus/motion softness, and sensor noise, on (S, S, 3) uint8."""
    size = image.shape[0]
    if rng.random() < 0.2:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 1.2))
    level, (y, x) = int(rng.integers(len(NOISE_LEVELS))), rng.integers(0, size, 2)
    return cv2.add(image, noise_fields(size)[level, y:y + size, x:x + size], dtype=cv2.CV_8U)


@contextlib.contextmanager
def one_torch_thread():
    """Run torch single-threaded for a while: its OpenMP threads spin-wait after each parallel op
    and starve the rasteriser's threads (rendering got 4x slower in a process using 2 threads)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class Synthesizer:
    """``render(indices) -> list[Rendered]``: samples of (split, seed) at ``size`` pixels.

    Each hand is posed on its own (a batched pose could differ in the last bit with the batch's
    make-up, and sample i must not depend on which samples share its batch). Images are drawn by
    this process's GL context (created on first use, see render.py), several in flight at once.
    ``backgrounds`` is an optional folder of photos.
    """

    def __init__(self, split: str = "train", seed: int = 0, size: int = 224, backgrounds: str = None,
                 supersample: int = 1):
        self.size = size
        self.sampler = SceneSampler(split, seed, size)
        models = {side: load_hand_model("open", side) for side in ("right", "left")}
        self.meshes = {side: HandMesh(m) for side, m in models.items()}
        self.layers = {side: HandLayer(m) for side, m in models.items()}
        self.backgrounds = Backgrounds(size, split, seed, backgrounds)
        self.renderer = Renderer(size, supersample)

    @torch.no_grad()
    def render(self, indices) -> list:
        with one_torch_thread():
            draws = (self._pose(self.sampler.sample(i)) for i in indices)  # pulled as the renderer needs them
            return [self._finish(draw, layers) for draw, layers in self.renderer.render(draws)]

    def _pose(self, scene: Scene) -> Draw:
        """The Draw of one hand, tagged with (scene, transl (3,), keypoints (21, 3) camera space,
        the image's generator)."""
        side = "left" if scene.is_left else "right"
        mesh = self.meshes[side]
        out = self.layers[side](torch.from_numpy(scene.betas[None]), torch.from_numpy(scene.pose[None]))
        vertices = out.vertices[0].numpy()
        transl = place_hand(vertices, scene.K, self.size, scene.placement)
        vertices = vertices + transl
        arm, arm_rest = mesh.forearm(vertices, out.rest_vertices[0].numpy(), out.rest_joints[0, 0].numpy(),
                                     out.rotations[0, 0].numpy(), out.joints[0, 0].numpy() + transl, scene.forearm)
        combined = np.concatenate([vertices, arm])
        normals = vertex_normals(combined, mesh.faces)
        rng = np.random.default_rng(scene.image_seed)
        albedo, specular = surface(mesh, scene.skin, np.concatenate([mesh.texture_pos, arm_rest]), rng)
        return Draw(combined, normals, albedo, specular, mesh.ids, mesh.faces, scene.K, scene.lighting, side,
                    tag=(scene, transl, out.keypoints[0].numpy() + transl, rng))

    def _finish(self, draw: Draw, layers: RenderOutput) -> Rendered:
        """Composite the rendered hand over its background, add occluders and camera effects."""
        scene, transl, joints, rng = draw.tag
        keypoints_2d = project(joints, scene.K)
        rgba = cv2.GaussianBlur(layers.rgba, (0, 0), rng.uniform(*LENS_BLUR))
        r, g, b, a = cv2.split(rgba)
        clear = cv2.bitwise_not(a)
        backdrop = cv2.multiply(self.backgrounds.sample(rng, scene.index), cv2.merge([clear, clear, clear]),
                                scale=1 / 255)
        image = cv2.add(cv2.merge([r, g, b]), backdrop)                            # premultiplied "over"
        image, occluder = add_occluders(rng, image, layers.hand, keypoints_2d, self.backgrounds, scene.index)
        image = camera_effects(rng, image)
        mask = cv2.multiply(layers.hand, cv2.bitwise_not(occluder), scale=1 / 255) >= 128
        num_hand = self.meshes["left" if scene.is_left else "right"].num_hand
        sample = {
            "image": torch.from_numpy(np.stack(cv2.split(image))),
            "mask": torch.from_numpy(mask.astype(np.uint8)),
            "keypoints_2d": torch.from_numpy(keypoints_2d.astype(np.float32)),
            "joints_3d": torch.from_numpy(joints.astype(np.float32)),
            "vertices": torch.from_numpy(draw.vertices[:num_hand].copy()),
            "pose": torch.from_numpy(scene.pose),
            "betas": torch.from_numpy(scene.betas),
            "K": torch.from_numpy(scene.K),
            "is_left": torch.tensor(scene.is_left),
            "has_mask": torch.tensor(True), "has_3d": torch.tensor(True), "has_mesh": torch.tensor(True),
        }
        return Rendered(sample=sample, scene=scene, transl=transl)


def project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(N, 3) camera-space points -> (N, 2) pixels through intrinsics K (3, 3)."""
    uvw = points.astype(np.float64) @ K.astype(np.float64).T
    return uvw[:, :2] / uvw[:, 2:3]
