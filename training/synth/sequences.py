"""Rendered video clips with exact per-frame ground truth: the video benchmark's data (issue 19).

    python -m training.synth --video OUT_DIR --clips N [--seed S] [--frames F] [--motion-blur S]

Clip i of seed S is always the same. Even clips show both hands of one person: they start apart,
approach, touch (one a little in front of the other), cross over and part again. Odd clips show
one hand that leaves the picture (for about a second) and comes back. In every clip a bar sweeps
across the picture once (a brief occlusion). How the hands move (smooth minimum-jerk moves between natural
poses, slow and fast) is motion.py's job. Shape, skin, forearm, light and background come from the
still-image synthesizer (scene.py, backgrounds.py, render.py, held-out style), drawn once per clip.
With ``--motion-blur S`` every frame is the mean of S renders spread over a half-frame open shutter
(a film camera's 180 degrees) centred on the frame's time, as a camera blurs fast fingers; the truth
stays that of the frame's time.

Files per clip (``clip_NNN``), written atomically:
  clip_NNN.mp4        640 x 480, 30 fps, mp4v
  clip_NNN_K.npy      (3, 3) float32 intrinsics, pixels: ``handcap estimate`` picks it up as the
                      video's sidecar, so the engine sees the true camera
  clip_NNN_truth.npz  (F frames, H hands; camera space, metres; pixels for 2D):
      K            (3, 3)            intrinsics
      fps          ()                frames per second
      image_size   (2,)              width, height
      sides        (H,) str          "right" / "left": hand h keeps its identity for the whole clip
      betas        (H, 10)           shape
      pose         (F, H, 16, 3)     axis-angle, row 0 = global orientation in camera space
      transl       (F, H, 3)         layer(betas, pose, transl) is the rendered hand
      joints_3d    (F, H, 21, 3)     the model's keypoints (joint centres, fingertips), FreiHAND order
      landmarks_3d (F, H, 21, 3)     the true hand's landmark points (core.hand_model.landmark_points):
                                     what the engine reports, so what it is scored against
      landmarks_2d (F, H, 21, 2)     landmarks_3d projected through K
      keypoints_2d (F, H, 21, 2)     joints_3d projected through K
      in_frame     (F, H)            fraction of the 21 landmarks inside the picture
      hidden       (F, H, 21) bool   landmark behind the other hand's surface (HIDDEN_MARGIN nearer)
      unoccluded   (F, H)            fraction of the 21 landmarks inside the picture, not under the bar
                                     and not hidden behind the other hand
      visible      (F, H) bool       unoccluded >= VISIBLE_FRACTION: the hand should be estimated
      occluder     (F, 4)            the bar's box x0, y0, x1, y1 in pixels (NaN while off the picture)
"""

from __future__ import annotations

import os

import cv2
import numpy as np
import torch
from scipy.spatial.transform import Rotation, Slerp

from core.hand_model import HandLayer, load_hand_model
from core.hand_model.landmark_points import LandmarkPoints

from .backgrounds import Backgrounds
from .mesh import HandMesh, vertex_normals
from .motion import HandScript, MotionScripts
from .render import Draw, Renderer
from .scene import SceneSampler
from .synthesizer import noise_fields, one_torch_thread, project, surface

WIDTH, HEIGHT, FPS = 640, 480, 30.0
FOCAL = 620.0                  # pixels (about 54 degrees across the width)
BAR_WIDTH = 70                 # pixels, the occluding bar
VISIBLE_FRACTION = 0.5         # of the landmarks in the picture and unoccluded: "visible"
HIDDEN_MARGIN = 0.01           # metres: a landmark this far behind the other hand's surface is hidden by it
STREAM = 19_000_019            # keeps clip seeds apart from the still images'
SHUTTER = 0.5                  # frames the shutter is open with --motion-blur (180 degrees)


def shutter_times(frames: int, samples: int, shutter: float = SHUTTER) -> np.ndarray:
    """(F, S) times in frames at which each frame's S sub-frames are drawn: spread evenly over an open
    shutter of ``shutter`` frames centred on the frame (just the frame itself when S is 1), kept inside
    the clip."""
    offsets = (np.arange(samples) + 0.5) / samples - 0.5 if samples > 1 else np.zeros(1)
    return np.clip(np.arange(frames)[:, None] + shutter * offsets[None], 0, frames - 1)


def hand_at(hand: HandScript, times: np.ndarray) -> HandScript:
    """The scripted hand at fractional ``times`` (T,) frames: the wrist interpolated linearly, each
    joint's rotation slerped, between the neighbouring frames."""
    frames = np.arange(len(hand.pose))
    pose = np.stack([Slerp(frames, Rotation.from_rotvec(hand.pose[:, j]))(times).as_rotvec()
                     for j in range(hand.pose.shape[1])], 1)                            # (T, 16, 3)
    wrist = np.stack([np.interp(times, frames, hand.wrist[:, k]) for k in range(3)], 1)  # (T, 3)
    return HandScript(hand.side, hand.betas, pose.astype(hand.pose.dtype), wrist.astype(hand.wrist.dtype))


class SequenceSynthesizer:
    """``render(clip, frames) -> (BGR frames (F, 480, 640, 3) uint8, truth dict)`` for clip ``clip``."""

    def __init__(self, seed: int = 0, motion_blur: int = 1):
        if motion_blur < 1:
            raise ValueError(f"motion_blur must be at least 1 sub-frame, got {motion_blur}")
        self.seed = int(seed)
        self.motion_blur = int(motion_blur)
        self.sampler = SceneSampler("heldout", seed, WIDTH)   # held-out style: settings training never drew
        models = {side: load_hand_model("open", side) for side in ("right", "left")}
        self.meshes = {side: HandMesh(m) for side, m in models.items()}
        self.layers = {side: HandLayer(m, torch.float64) for side, m in models.items()}
        self.landmarks = {side: LandmarkPoints(side).double() for side in ("right", "left")}
        self.motion = MotionScripts(self.sampler, self.layers)
        self.backgrounds = Backgrounds(WIDTH, "heldout", seed)
        self.renderer = Renderer(WIDTH)
        self.K = np.array([[FOCAL, 0, (WIDTH - 1) / 2], [0, FOCAL, (HEIGHT - 1) / 2], [0, 0, 1]], np.float32)

    # ------------------------------------------------------------------ truth

    @torch.no_grad()
    def _pose_truth(self, hand: HandScript) -> dict:
        """Per-frame vertices, keypoints, landmark points (placed so that the wrist follows ``hand.wrist``)."""
        layer = self.layers[hand.side]
        frames = len(hand.pose)
        out = layer(torch.from_numpy(hand.betas[None]).expand(frames, -1), torch.from_numpy(hand.pose))
        transl = hand.wrist - out.keypoints[:, 0].numpy()                                   # (F, 3)
        points = self.landmarks[hand.side](out).numpy() + transl[:, None]
        return {"transl": transl, "vertices": out.vertices.numpy() + transl[:, None], "out": out,
                "joints_3d": out.keypoints.numpy() + transl[:, None], "landmarks_3d": points}

    # ------------------------------------------------------------------ pictures

    def _draws(self, rng, hands, truths, scenes):
        """One Draw per frame holding every hand with its forearm."""
        frames = len(hands[0].pose)
        for f in range(frames):
            parts, offset = [], 0
            for hand, truth, scene in zip(hands, truths, scenes):
                mesh, out = self.meshes[hand.side], truth["out"]
                vertices = truth["vertices"][f].astype(np.float32)
                arm, arm_rest = mesh.forearm(vertices, out.rest_vertices[f].numpy().astype(np.float32),
                                             out.rest_joints[f, 0].numpy(), out.rotations[f, 0].numpy(),
                                             (out.joints[f, 0].numpy() + truth["transl"][f]).astype(np.float32),
                                             scene.forearm)
                combined = np.concatenate([vertices, arm])
                albedo, specular = surface(mesh, scene.skin, np.concatenate([mesh.texture_pos, arm_rest]),
                                           np.random.default_rng(scene.index))
                parts.append((combined, vertex_normals(combined, mesh.faces), albedo, specular, mesh.ids,
                              mesh.faces + offset))
                offset += len(combined)
            columns = [np.concatenate(c) for c in zip(*parts)]
            yield Draw(*columns, K=self.K, lighting=scenes[0].lighting,
                       mesh_key="+".join(h.side for h in hands), tag=f)

    def render(self, clip: int, frames: int) -> tuple[np.ndarray, dict]:
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, STREAM, int(clip)]))
        hands = self.motion.hands(rng, clip, frames)
        truths = [self._pose_truth(h) for h in hands]
        scenes = [self.sampler.sample(clip * 2 + h) for h in range(len(hands))]
        for scene in scenes[1:]:                   # one person: the same skin on both hands
            scene.skin = scenes[0].skin
        background = self.backgrounds.texture(rng, clip, WIDTH, HEIGHT)
        bar_texture = self.backgrounds.texture(rng, clip + 1, BAR_WIDTH, HEIGHT)
        bar_x = self._bar_path(rng, frames)
        noise = noise_fields(WIDTH)[int(rng.integers(1, 3))]
        times = shutter_times(frames, self.motion_blur)                               # (F, S) frames
        shots = [hand_at(h, times.ravel()) for h in hands] if self.motion_blur > 1 else hands
        shot_truths = [self._pose_truth(h) for h in shots] if self.motion_blur > 1 else truths
        shot_bar_x = np.interp(times.ravel(), np.arange(frames), bar_x)
        exposure = np.zeros((HEIGHT, WIDTH, 3), np.float32)
        images = np.empty((frames, HEIGHT, WIDTH, 3), np.uint8)
        with one_torch_thread():
            for draw, layers in self.renderer.render(self._draws(rng, shots, shot_truths, scenes)):
                exposure += self._composite(layers.rgba[:HEIGHT], background, bar_texture, shot_bar_x[draw.tag])
                f, s = divmod(draw.tag, self.motion_blur)
                if s < self.motion_blur - 1:
                    continue
                image = np.clip(exposure / self.motion_blur + 0.5, 0, 255).astype(np.uint8)
                exposure[:] = 0
                y, x = rng.integers(0, WIDTH, 2)
                image = cv2.add(image, noise[y:y + HEIGHT, x:x + WIDTH], dtype=cv2.CV_8U)
                images[f] = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        return images, self._truth(hands, truths, bar_x)

    @staticmethod
    def _composite(rgba: np.ndarray, background: np.ndarray, bar_texture: np.ndarray, bar_x: float) -> np.ndarray:
        """(H, W, 4) uint8 rendered hands over the (H, W, 3) background, the bar (left edge ``bar_x``
        pixels) in front: (H, W, 3) RGB float32, 0-255."""
        rgba = cv2.GaussianBlur(rgba, (0, 0), 0.5)
        r, g, b, a = cv2.split(rgba)
        clear = cv2.bitwise_not(a)
        image = cv2.add(cv2.merge([r, g, b]), cv2.multiply(background, cv2.merge([clear, clear, clear]), scale=1 / 255))
        x0 = int(round(bar_x))
        lo, hi = max(x0, 0), min(x0 + BAR_WIDTH, WIDTH)
        if lo < hi:
            image[:, lo:hi] = bar_texture[:, lo - x0:hi - x0]
        return image.astype(np.float32)

    @staticmethod
    def _bar_path(rng, frames: int) -> np.ndarray:
        """(F,) left edge of the bar, pixels: it sweeps across once, in about a third of the clip."""
        start = int(rng.integers(frames // 6, frames // 2))
        sweep = max(6, frames // 3)
        direction = 1 if rng.random() < 0.5 else -1
        t = np.clip((np.arange(frames) - start) / sweep, -0.01, 1.01)
        x = -BAR_WIDTH + t * (WIDTH + BAR_WIDTH)
        return x if direction > 0 else WIDTH - BAR_WIDTH - x

    def _truth(self, hands, truths, bar_x) -> dict:
        stack = {k: np.stack([t[k] for t in truths], 1) for k in ("transl", "joints_3d", "landmarks_3d")}
        shape_2d = stack["landmarks_3d"].shape[:-1] + (2,)                         # (F, H, 21, 2)
        landmarks_2d = project(stack["landmarks_3d"].reshape(-1, 3), self.K).reshape(shape_2d)
        keypoints_2d = project(stack["joints_3d"].reshape(-1, 3), self.K).reshape(shape_2d)
        u, v = landmarks_2d[..., 0], landmarks_2d[..., 1]
        inside = (u >= 0) & (u <= WIDTH - 1) & (v >= 0) & (v <= HEIGHT - 1)       # (F, H, 21)
        under = (u >= bar_x[:, None, None]) & (u < bar_x[:, None, None] + BAR_WIDTH)
        hidden = np.zeros_like(inside)                                           # behind the other hand
        if len(hands) == 2:
            for h in range(2):
                faces = self.layers[hands[1 - h].side].model.faces                  # the other hand's mesh
                for f in range(len(bar_x)):
                    hidden[f, h] = hidden_behind(stack["landmarks_3d"][f, h], truths[1 - h]["vertices"][f], faces, self.K)
        unoccluded = (inside & ~under & ~hidden).mean(-1)
        on = (bar_x + BAR_WIDTH > 0) & (bar_x < WIDTH)
        occluder = np.where(on[:, None], np.stack([bar_x, np.zeros_like(bar_x), bar_x + BAR_WIDTH,
                                                   np.full_like(bar_x, HEIGHT)], 1), np.nan)
        return {"K": self.K, "fps": np.float32(FPS), "image_size": np.array([WIDTH, HEIGHT]),
                "sides": np.array([h.side for h in hands]),
                "betas": np.stack([h.betas for h in hands]).astype(np.float32),
                "pose": np.stack([h.pose for h in hands], 1).astype(np.float32),
                "transl": stack["transl"].astype(np.float32), "joints_3d": stack["joints_3d"].astype(np.float32),
                "landmarks_3d": stack["landmarks_3d"].astype(np.float32),
                "landmarks_2d": landmarks_2d.astype(np.float32), "keypoints_2d": keypoints_2d.astype(np.float32),
                "in_frame": inside.mean(-1).astype(np.float32), "unoccluded": unoccluded.astype(np.float32),
                "hidden": hidden,
                "visible": unoccluded >= VISIBLE_FRACTION, "occluder": occluder.astype(np.float32)}


def hidden_behind(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray, K: np.ndarray,
                  margin: float = HIDDEN_MARGIN) -> np.ndarray:
    """(P,) bool: which camera-space ``points`` (P, 3) metres lie behind the surface of another mesh
    ((V, 3) ``vertices``, (F, 3) ``faces``) seen through K: a triangle of it covers the point's pixel
    at least ``margin`` metres nearer the camera."""
    uv = project(points, K)                                                      # (P, 2)
    tri = project(vertices, K)[faces]                                            # (F, 3, 2)
    depth = vertices[faces][..., 2]                                              # (F, 3)
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]                                    # (F, 2) each
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])   # (F,)
    area = np.where(np.abs(area) < 1e-9, np.nan, area)
    d = uv[:, None] - a[None]                                                    # (P, F, 2)
    w1 = (d[..., 0] * (c[:, 1] - a[:, 1]) - d[..., 1] * (c[:, 0] - a[:, 0])) / area   # (P, F)
    w2 = ((b[:, 0] - a[:, 0]) * d[..., 1] - (b[:, 1] - a[:, 1]) * d[..., 0]) / area
    w0 = 1 - w1 - w2
    inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0)
    surface = w0 * depth[:, 0] + w1 * depth[:, 1] + w2 * depth[:, 2]           # (P, F) metres
    return (inside & (surface < points[:, 2:3] - margin)).any(1)


def write_clip(path_stem: str, images: np.ndarray, truth: dict) -> None:
    """``stem.mp4``, ``stem_K.npy``, ``stem_truth.npz``, each written to a temporary name and renamed."""
    folder, name = os.path.split(path_stem)
    tmp_video = os.path.join(folder, f".{name}.tmp.mp4")
    writer = cv2.VideoWriter(tmp_video, cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise RuntimeError(f"{tmp_video}: OpenCV cannot write mp4v video")
    for image in images:
        writer.write(image)
    writer.release()
    tmp_truth = os.path.join(folder, f".{name}.tmp.npz")
    np.savez_compressed(tmp_truth, **truth)
    tmp_K = os.path.join(folder, f".{name}.tmp.npy")
    np.save(tmp_K, truth["K"])
    os.replace(tmp_video, path_stem + ".mp4")
    os.replace(tmp_K, path_stem + "_K.npy")
    os.replace(tmp_truth, path_stem + "_truth.npz")


def write_clips(out_dir: str, clips: int, seed: int = 0, frames: int = 75, motion_blur: int = 1) -> str:
    """Render ``clips`` clips of ``frames`` frames (each the mean of ``motion_blur`` sub-frames) into
    ``out_dir``; returns a one-line summary."""
    os.makedirs(out_dir, exist_ok=True)
    synthesizer = SequenceSynthesizer(seed, motion_blur)
    for clip in range(clips):
        images, truth = synthesizer.render(clip, frames)
        write_clip(os.path.join(out_dir, f"clip_{clip:03d}"), images, truth)
    return f"{clips} clip(s) of {frames} frames ({WIDTH} x {HEIGHT}, {FPS:g} fps) with ground truth in {out_dir}"
