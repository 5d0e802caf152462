"""Synthetic multi-view ground truth: one hand seen at one instant by V calibrated cameras (issue 31).

    python -m training.synth.multiview --out DIR --count N --views V [--seed S] [--size 480]
    python -m training.synth.multiview --clip FRAMES --out DIR --count N [--views 2] [--offset K]   (clips:
                                       multiview_clips.py)

Sample i of seed S is always the same. Its hand (side, pose, shape, skin, forearm, lighting) is a
scene of the still-image synthesizer's **held-out** style (scene.py: settings training never drew,
and poses drawn apart from those the engine was tuned on), seen by V cameras placed as phones or
webcams on tripods around a table would be: each camera 0.4-0.9 m from the hand, looking at it,
30-100 degrees around it from its neighbour, a little above or below it, with a small roll, and a
focal length of a phone or webcam (55-78 degrees across the width). View 0 is the reference: its
camera is the world (R = I, t = 0). Lights stay fixed in the world, so every view sees the same
lighting from its own side; each view has its own background (held-out families, backgrounds.py).
A camera setup in which the hand leaves a view's picture, fills too little of it, or is hidden
behind its own forearm is drawn again.

Files, each written to a temporary name and renamed when complete:
  DIR/index.json                   count, views, seed, size, the format (this text's summary)
  DIR/NNNNN/view0.png ...          (H, W) RGB pictures, W = 4/3 H, H = --size
  DIR/NNNNN/view0_mask.png ...     the visible hand's pixels (255), forearm excluded
  DIR/NNNNN/cameras.json           core.multiview.cameras.save_cameras: K, R, t, image_size per view
  DIR/NNNNN/truth.json             in view 0's camera space (metres, OpenCV axes; pixels for 2D):
      side          "right" | "left"
      betas (10,), pose (16, 3)    the open hand model's shape and axis-angle pose (row 0 = global
                                   orientation in view 0's frame); transl (3,): layer(betas, pose,
                                   transl) is the rendered hand
      joints_3d (21, 3)            the model's keypoints (joint centres, fingertips), FreiHAND order
      landmarks_3d (21, 3)         the hand's landmark points (core.hand_model.landmark_points): what
                                   the engine reports, so what it is scored against
      keypoints_2d (V, 21, 2)      joints_3d projected into each view
      landmarks_2d (V, 21, 2)      landmarks_3d projected into each view
"""

from __future__ import annotations

import argparse
import json
import os

import cv2
import numpy as np
import torch

from core.hand_model import HandLayer, load_hand_model
from core.hand_model.landmark_points import LandmarkPoints
from blender_addon.output_files import write_bytes
from core.multiview.cameras import ViewCamera, load_cameras, save_cameras

from .backgrounds import Backgrounds
from .mesh import HandMesh, vertex_normals
from .render import Draw, Lighting, Renderer
from .scene import MAX_ARM_TOWARD_CAMERA, SceneSampler
from .synthesizer import LENS_BLUR, noise_fields, one_torch_thread, surface

ASPECT = 4 / 3                  # width / height of every picture
FOV_DEG = (55.0, 78.0)          # horizontal field of view of phones and webcams, degrees
DISTANCE = (0.4, 0.9)           # metres, hand centre to each camera
APART_DEG = (30.0, 100.0)       # degrees around the hand between neighbouring cameras
ELEVATION_DEG = 25.0            # largest camera height above/below the hand, degrees
ROLL_DEG = 6.0                  # largest roll of a camera about its optical axis, degrees
AIM = 0.12                      # largest aiming error, as a fraction of the field of view
MARGIN = 0.03                   # of the picture's height kept between the hand and the border
MIN_FILL = 0.12                 # the hand's box side over the picture's height, at least
SCENES_PER_SAMPLE = 16          # sample i draws from held-out scenes 16 i .. 16 i + 15
RIG_TRIES = 40                  # camera setups tried per scene
STREAM = 31_000_031             # keeps multi-view seeds apart from the still images' and clips'


def look_at(centre: np.ndarray, target: np.ndarray, down: np.ndarray, roll: float) -> np.ndarray:
    """(3, 3) world -> camera rotation of a camera at ``centre`` looking at ``target``, its image
    y axis along ``down`` (world, projected) turned by ``roll`` radians about the optical axis."""
    z = target - centre
    z = z / np.linalg.norm(z)
    x = np.cross(down, z)
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    c, s = np.cos(roll), np.sin(roll)
    return np.stack([c * x + s * y, -s * x + c * y, z])


def intrinsics(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """(3, 3) K of a phone or webcam: horizontal field of view in FOV_DEG, square pixels, the
    principal point within 2 % of the centre."""
    fov = np.radians(rng.uniform(*FOV_DEG))
    focal = (width / 2) / np.tan(fov / 2)
    cx, cy = (width - 1) / 2 + rng.uniform(-0.02, 0.02) * width, (height - 1) / 2 + rng.uniform(-0.02, 0.02) * height
    return np.array([[focal, 0, cx], [0, focal, cy], [0, 0, 1]])


def sample_rig(rng: np.random.Generator, views: int, width: int, height: int) -> tuple[list[ViewCamera], np.ndarray]:
    """V cameras around a hand, and the hand's centre (3,) in view 0's frame (metres): view 0 looks
    at the hand from DISTANCE, aimed a little off; the others stand around it (``place_cameras``)."""
    Ks = [intrinsics(rng, width, height) for _ in range(views)]
    aim = rng.uniform(-AIM, AIM, 2) * np.array([width, height]) / Ks[0][0, 0]      # image-plane offset
    direction = np.array([aim[0], aim[1], 1.0])
    hand = rng.uniform(*DISTANCE) * direction / np.linalg.norm(direction)
    return place_cameras(rng, Ks, hand, width, height), hand


def place_cameras(rng: np.random.Generator, Ks: list, hand: np.ndarray, width: int, height: int) -> list[ViewCamera]:
    """View 0 (identity, intrinsics Ks[0]) and views 1.. standing around ``hand`` (3,), view 0's frame,
    alternately to the right and left of the cameras placed so far (about the vertical, view 0's
    -y), APART_DEG from their neighbour, at their own DISTANCE, a little higher or lower, each
    looking at the hand with an aiming error, a roll and its own intrinsics Ks[v]."""
    down = np.array([0.0, 1.0, 0.0])
    to_camera0 = -hand / np.linalg.norm(hand)
    base_azimuth = np.arctan2(to_camera0[0], -to_camera0[2])   # about the vertical, seen from above
    cameras = [ViewCamera(np.asarray(Ks[0], np.float64), np.eye(3), np.zeros(3), (width, height))]
    right, left = 0.0, 0.0                                       # azimuths reached on either side
    for v in range(1, len(Ks)):
        step = np.radians(rng.uniform(*APART_DEG))
        if v % 2:
            right += step
            azimuth = base_azimuth + right
        else:
            left -= step
            azimuth = base_azimuth + left
        elevation = np.radians(rng.uniform(-ELEVATION_DEG, ELEVATION_DEG))
        offset = np.array([np.sin(azimuth) * np.cos(elevation), -np.sin(elevation), -np.cos(azimuth) * np.cos(elevation)])
        centre = hand + rng.uniform(*DISTANCE) * offset
        K = np.asarray(Ks[v], np.float64)
        target = hand + rng.uniform(-AIM, AIM, 3) * np.linalg.norm(centre - hand) * width / K[0, 0]
        R = look_at(centre, target, down, np.radians(rng.uniform(-ROLL_DEG, ROLL_DEG)))
        cameras.append(ViewCamera(K, R, -R @ centre, (width, height)))
    return cameras


def lighting_in(lighting: Lighting, R: np.ndarray) -> Lighting:
    """View 0's lighting (directions in its camera space) as seen from a camera rotated by R."""
    return Lighting(directions=(lighting.directions @ R.T).astype(np.float32), colors=lighting.colors,
                    ambient_up=lighting.ambient_up, ambient_down=lighting.ambient_down, up=lighting.up @ R.T,
                    wrap=lighting.wrap, shininess=lighting.shininess, exposure=lighting.exposure)


def fits(camera: ViewCamera, vertices: np.ndarray, arm_direction: np.ndarray) -> bool:
    """Whether the hand ``vertices`` (V, 3), view 0 frame, lie in front of ``camera``, inside its
    picture with MARGIN, fill at least MIN_FILL of its height, and its forearm (unit direction from
    the wrist, view 0 frame) does not point at the camera."""
    width, height = camera.image_size
    if camera.to_view(vertices)[:, 2].min() < 0.1:
        return False
    pixels = camera.project(vertices)
    margin = MARGIN * height
    low, high = pixels.min(0), pixels.max(0)
    if low.min() < margin or high[0] > width - 1 - margin or high[1] > height - 1 - margin:
        return False
    if (high - low).max() < MIN_FILL * height:
        return False
    return (camera.R @ arm_direction)[2] > -MAX_ARM_TOWARD_CAMERA


class MultiViewSynthesizer:
    """``render(index) -> (pictures [V x (H, W, 3) uint8 RGB], masks [V x (H, W) bool], cameras, truth)``."""

    def __init__(self, views: int, seed: int = 0, size: int = 480):
        if views < 1:
            raise ValueError(f"views must be at least 1, got {views}")
        self.views, self.seed = int(views), int(seed)
        self.height, self.width = int(size), int(round(size * ASPECT))
        self.sampler = SceneSampler("heldout", seed, self.width)   # held-out style: settings training never drew
        models = {side: load_hand_model("open", side) for side in ("right", "left")}
        self.meshes = {side: HandMesh(m) for side, m in models.items()}
        self.layers = {side: HandLayer(m, torch.float64) for side, m in models.items()}
        self.landmarks = {side: LandmarkPoints(side).double() for side in ("right", "left")}
        self.backgrounds = Backgrounds(self.width, "heldout", seed)
        self.renderer = Renderer(self.width)       # square; the top H rows are the picture

    @torch.no_grad()
    def _hand(self, scene):
        """The scene's hand posed at the origin (view 0's orientation): (layer output, side)."""
        side = "left" if scene.is_left else "right"
        out = self.layers[side](torch.from_numpy(scene.betas[None]).double(), torch.from_numpy(scene.pose[None]).double())
        return out, side

    def _setup(self, index: int, rng: np.random.Generator):
        """(scene, side, layer output, cameras, transl (3,)) of the first held-out scene of this
        sample for which a camera setup that shows the hand well in every view is found."""
        for attempt in range(SCENES_PER_SAMPLE):
            scene = self.sampler.sample(index * SCENES_PER_SAMPLE + attempt)
            out, side = self._hand(scene)
            vertices = out.vertices[0].numpy()
            rotation = out.rotations[0, 0].numpy()
            arm_direction = rotation @ np.array([0.0, -1.0, 0.0])    # the forearm leaves the wrist along -y at rest
            middle = (vertices.min(0) + vertices.max(0)) / 2
            for _ in range(RIG_TRIES):
                cameras, centre = sample_rig(rng, self.views, self.width, self.height)
                transl = centre - middle
                if all(fits(c, vertices + transl, arm_direction) for c in cameras):
                    return scene, side, out, cameras, transl
        raise RuntimeError(f"sample {index}: no camera setup shows the hand in all {self.views} views")

    def _draws(self, scene, side, out, cameras, transl, rng):
        mesh = self.meshes[side]
        vertices = (out.vertices[0].numpy() + transl).astype(np.float32)
        arm, arm_rest = mesh.forearm(vertices, out.rest_vertices[0].numpy().astype(np.float32),
                                     out.rest_joints[0, 0].numpy(), out.rotations[0, 0].numpy(),
                                     (out.joints[0, 0].numpy() + transl).astype(np.float32), scene.forearm)
        world = np.concatenate([vertices, arm]).astype(np.float64)
        albedo, specular = surface(mesh, scene.skin, np.concatenate([mesh.texture_pos, arm_rest]), rng)
        for v, camera in enumerate(cameras):
            points = camera.to_view(world).astype(np.float32)
            yield Draw(points, vertex_normals(points, mesh.faces), albedo, specular, mesh.ids, mesh.faces,
                       camera.K.astype(np.float32), lighting_in(scene.lighting, camera.R), side, tag=v)

    @torch.no_grad()
    def render(self, index: int):
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, STREAM, int(index)]))
        scene, side, out, cameras, transl = self._setup(index, rng)
        pictures, masks = [None] * self.views, [None] * self.views
        noise = noise_fields(self.width)[int(rng.integers(1, 3))]
        H, W = self.height, self.width
        with one_torch_thread():
            for draw, layers in self.renderer.render(self._draws(scene, side, out, cameras, transl, rng)):
                rgba = cv2.GaussianBlur(layers.rgba[:H], (0, 0), rng.uniform(*LENS_BLUR))
                r, g, b, a = cv2.split(rgba)
                clear = cv2.bitwise_not(a)
                backdrop = cv2.multiply(self.backgrounds.texture(rng, index * self.views + draw.tag, W, H),
                                        cv2.merge([clear, clear, clear]), scale=1 / 255)
                image = cv2.add(cv2.merge([r, g, b]), backdrop)
                y, x = rng.integers(0, W, 2)
                pictures[draw.tag] = cv2.add(image, noise[y:y + H, x:x + W], dtype=cv2.CV_8U)
                masks[draw.tag] = layers.hand[:H] >= 128
        return pictures, masks, cameras, self._truth(scene, side, out, cameras, transl)

    def _truth(self, scene, side, out, cameras, transl) -> dict:
        joints = out.keypoints[0].numpy() + transl
        landmarks = self.landmarks[side](out)[0].numpy() + transl
        return {"side": side, "betas": scene.betas.astype(np.float64), "pose": scene.pose.astype(np.float64),
                "transl": transl, "joints_3d": joints, "landmarks_3d": landmarks,
                "keypoints_2d": np.stack([c.project(joints) for c in cameras]),
                "landmarks_2d": np.stack([c.project(landmarks) for c in cameras]),
                "scene_index": int(scene.index)}


def png(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return data.tobytes()


def truth_json(truth: dict) -> dict:
    return {k: (np.round(np.asarray(v, np.float64), 7).tolist() if isinstance(v, np.ndarray) else v)
            for k, v in truth.items()}


def sample_folder(out: str, index: int) -> str:
    return os.path.join(out, f"{index:05d}")


def write_sample(folder: str, pictures, masks, cameras, truth) -> None:
    """One sample's files (see the module doc), each atomic."""
    os.makedirs(folder, exist_ok=True)
    for v, (picture, mask) in enumerate(zip(pictures, masks)):
        write_bytes(os.path.join(folder, f"view{v}.png"), png(cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)))
        write_bytes(os.path.join(folder, f"view{v}_mask.png"), png(mask.astype(np.uint8) * 255))
    save_cameras(os.path.join(folder, "cameras.json"), cameras)
    write_bytes(os.path.join(folder, "truth.json"), (json.dumps(truth_json(truth)) + "\n").encode())


def write_multiview(out: str, count: int, views: int, seed: int = 0, size: int = 480, progress: bool = True) -> str:
    """Render samples 0..count-1 into ``out``; returns a one-line summary."""
    from tqdm import tqdm

    os.makedirs(out, exist_ok=True)
    synthesizer = MultiViewSynthesizer(views, seed, size)
    for index in tqdm(range(count), desc=f"multi-view ({views} views)", unit="sample", disable=not progress):
        write_sample(sample_folder(out, index), *synthesizer.render(index))
    index = {"format": "handcap multi-view synthetic ground truth (training/synth/multiview.py)",
             "count": count, "views": views, "seed": seed, "size": [synthesizer.width, synthesizer.height],
             "split": "heldout", "samples": [f"{i:05d}" for i in range(count)],
             "truth": "truth.json: joints_3d/landmarks_3d (21, 3) metres in view 0's camera frame, FreiHAND order; "
                      "the engine is scored against landmarks_3d"}
    write_bytes(os.path.join(out, "index.json"), (json.dumps(index, indent=1) + "\n").encode())
    return f"{count} sample(s) of {views} view(s), {synthesizer.width} x {synthesizer.height}, in {out}"


def read_sample(folder: str, views: int = None) -> tuple[list[np.ndarray], list[ViewCamera], dict]:
    """One written sample: (RGB pictures (H, W, 3) uint8, cameras, truth with numpy arrays)."""
    cameras = load_cameras(os.path.join(folder, "cameras.json"))[:views]
    pictures = []
    for v in range(len(cameras)):
        bgr = cv2.imread(os.path.join(folder, f"view{v}.png"), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(f"{folder}: cannot read view{v}.png")
        pictures.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    with open(os.path.join(folder, "truth.json"), encoding="utf-8") as f:
        truth = {k: (np.asarray(v, np.float64) if isinstance(v, list) else v) for k, v in json.load(f).items()}
    return pictures, cameras, truth


HELP = __doc__.split("\n\n", 1)[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.synth.multiview",
                                     description="Render synthetic multi-view hand samples with exact cameras and truth.",
                                     epilog=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", metavar="DIR", required=True, help="folder to write the samples into")
    parser.add_argument("--count", type=int, default=30, help="number of samples (default: %(default)s)")
    parser.add_argument("--views", type=int, help="cameras per sample (default: 3; with --clip: 2)")
    parser.add_argument("--seed", type=int, default=0, help="data seed (default: %(default)s)")
    parser.add_argument("--size", type=int, default=480,
                        help="picture height in pixels; the width is 4/3 of it (default: %(default)s)")
    parser.add_argument("--clip", type=int, metavar="FRAMES",
                        help="instead: N clips of FRAMES frames of moving hands seen by --views cameras (default 2), "
                             "per-view mp4 videos, cameras.json and per-frame truth (multiview_clips.py)")
    parser.add_argument("--offset", type=int, default=0, metavar="K",
                        help="with --clip: views after the first start recording K frames late (default: 0)")
    args = parser.parse_args(argv)
    if args.views is None:
        args.views = 2 if args.clip is not None else 3
    if args.count < 1 or args.views < 1:
        parser.error("--count and --views must be at least 1")
    if args.clip is not None:
        if args.clip < 2 or args.offset < 0:
            parser.error("--clip needs at least 2 frames and --offset at least 0")
        from .multiview_clips import write_multiview_clips
        print(write_multiview_clips(args.out, args.count, args.clip, args.views, args.offset, args.seed))
        return 0
    if args.offset:
        parser.error("--offset goes with --clip")
    if args.size < 64:
        parser.error("--size must be at least 64")
    print(write_multiview(args.out, args.count, args.views, args.seed, args.size))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
