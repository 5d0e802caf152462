"""Rendered multi-view clips: the video benchmark's moving hands seen by V calibrated cameras at once.

    python -m training.synth.multiview --clip FRAMES --out DIR --count N [--views 2] [--offset K] [--seed S]

Clip i of seed S is always the same. The hands move as in the single-view clips (motion.py via
sequences.py: even clips both hands of one person approach, touch, cross and part; odd clips one
hand leaves the picture and comes back), with held-out shape, skin, forearm, light and background.
View 0 is the single-view clips' camera (640 x 480, the hands about 0.5 m away); the other views
stand around the hands' mean position as multiview.py places them (30-100 degrees apart, 0.4-0.9 m,
phone or webcam focal lengths). Lights stay fixed in the world. With ``--offset K`` every view after
the first starts recording K frames later than view 0 (as unsynchronised phones do): its frame j
shows view 0's frame j + K; every view's video has FRAMES frames.

Files per clip (``DIR/clip_NNN/``), each written to a temporary name and renamed:
  view0.mp4, view1.mp4 ...   640 x 480, 30 fps, mp4v
  cameras.json               core.multiview.cameras.save_cameras, with image_size
  truth.npz                  indexed by view 0's frame number t in [0, FRAMES + K) (view 0's space, metres):
      sides (H,) str, betas (H, 10), pose (T, H, 16, 3), transl (T, H, 3), joints_3d (T, H, 21, 3),
      landmarks_3d (T, H, 21, 3) (what the engine is scored against),
      frame_offset (V,) int: view v's frame ``t + frame_offset[v]`` shows view 0's frame t (the
                     capture format's views/frame_offset; -K for the late views),
      landmarks_2d (V, T, H, 21, 2) landmarks_3d projected into each view, in_frame (V, T, H)
      fraction of the landmarks inside each view's picture, fps (), image_size (2,)
"""

from __future__ import annotations

import os

import cv2
import numpy as np
import torch
from tqdm import tqdm

from blender_addon.output_files import atomic_output
from core.multiview.cameras import save_cameras

from .mesh import vertex_normals
from .multiview import intrinsics, lighting_in, place_cameras
from .render import Draw
from .sequences import FPS, HEIGHT, STREAM, WIDTH, SequenceSynthesizer
from .synthesizer import noise_fields, one_torch_thread, surface

CLIP_STREAM = 31_000_033      # keeps multi-view clip seeds apart from the single-view clips'


class MultiViewClips:
    """``render(clip, frames, offset) -> (videos [V x (F, H, W, 3) uint8 BGR], cameras, truth)``."""

    def __init__(self, views: int = 2, seed: int = 0):
        self.views, self.seed = int(views), int(seed)
        self.sequences = SequenceSynthesizer(seed)     # motion, hand layers, meshes, backgrounds, renderer

    def _draws(self, hands, truths, scenes, cameras, times: int):
        """One Draw per (time, view) for times 0..times-1, tagged (time, view)."""
        s = self.sequences
        for f in range(times):
            world, static, offset = [], [], 0
            for hand, truth, scene in zip(hands, truths, scenes):
                mesh, out = s.meshes[hand.side], truth["out"]
                vertices = truth["vertices"][f].astype(np.float32)
                arm, arm_rest = mesh.forearm(vertices, out.rest_vertices[f].numpy().astype(np.float32),
                                             out.rest_joints[f, 0].numpy(), out.rotations[f, 0].numpy(),
                                             (out.joints[f, 0].numpy() + truth["transl"][f]).astype(np.float32),
                                             scene.forearm)
                albedo, specular = surface(mesh, scene.skin, np.concatenate([mesh.texture_pos, arm_rest]),
                                           np.random.default_rng(scene.index))
                world.append(np.concatenate([vertices, arm]).astype(np.float64))
                static.append((albedo, specular, mesh.ids, mesh.faces + offset))
                offset += len(world[-1])
            faces = np.concatenate([p[3] for p in static])
            for v, camera in enumerate(cameras):
                points = camera.to_view(np.concatenate(world)).astype(np.float32)
                yield Draw(points, vertex_normals(points, faces), np.concatenate([p[0] for p in static]),
                           np.concatenate([p[1] for p in static]), np.concatenate([p[2] for p in static]), faces,
                           camera.K.astype(np.float32), lighting_in(scenes[0].lighting, camera.R),
                           "+".join(h.side for h in hands), tag=(f, v))

    @torch.no_grad()
    def render(self, clip: int, frames: int, offset: int = 0):
        s = self.sequences
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, STREAM, int(clip)]))
        hands = s.motion.hands(rng, clip, frames + offset)          # the single-view clip's motion
        truths = [s._pose_truth(h) for h in hands]
        scenes = [s.sampler.sample(clip * 2 + h) for h in range(len(hands))]
        for scene in scenes[1:]:
            scene.skin = scenes[0].skin
        rig = np.random.default_rng(np.random.SeedSequence([self.seed, CLIP_STREAM, int(clip)]))
        centre = np.mean([t["joints_3d"].reshape(-1, 3).mean(0) for t in truths], axis=0)
        Ks = [s.K.astype(np.float64)] + [intrinsics(rig, WIDTH, HEIGHT) for _ in range(self.views - 1)]
        cameras = place_cameras(rig, Ks, centre, WIDTH, HEIGHT)
        backgrounds = [s.backgrounds.texture(rig, clip * self.views + v, WIDTH, HEIGHT) for v in range(self.views)]
        noise = noise_fields(WIDTH)[int(rig.integers(1, 3))]
        starts = [0] + [offset] * (self.views - 1)
        videos = [np.empty((frames, HEIGHT, WIDTH, 3), np.uint8) for _ in range(self.views)]
        with one_torch_thread():
            for draw, layers in s.renderer.render(self._draws(hands, truths, scenes, cameras, frames + offset)):
                t, v = draw.tag
                j = t - starts[v]
                if not 0 <= j < frames:
                    continue
                rgba = cv2.GaussianBlur(layers.rgba[:HEIGHT], (0, 0), 0.5)
                r, g, b, a = cv2.split(rgba)
                clear = cv2.bitwise_not(a)
                image = cv2.add(cv2.merge([r, g, b]),
                                cv2.multiply(backgrounds[v], cv2.merge([clear, clear, clear]), scale=1 / 255))
                y, x = rig.integers(0, WIDTH, 2)
                image = cv2.add(image, noise[y:y + HEIGHT, x:x + WIDTH], dtype=cv2.CV_8U)
                videos[v][j] = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        return videos, cameras, self._truth(hands, truths, cameras, starts)

    @staticmethod
    def _truth(hands, truths, cameras, starts) -> dict:
        stack = {k: np.stack([t[k] for t in truths], 1) for k in ("transl", "joints_3d", "landmarks_3d")}
        landmarks_2d = np.stack([c.project(stack["landmarks_3d"]) for c in cameras])      # (V, T, H, 21, 2)
        u, v = landmarks_2d[..., 0], landmarks_2d[..., 1]
        inside = (u >= 0) & (u <= WIDTH - 1) & (v >= 0) & (v <= HEIGHT - 1)
        return {"sides": np.array([h.side for h in hands]), "betas": np.stack([h.betas for h in hands]).astype(np.float32),
                "pose": np.stack([h.pose for h in hands], 1).astype(np.float32),
                "transl": stack["transl"].astype(np.float32), "joints_3d": stack["joints_3d"].astype(np.float32),
                "landmarks_3d": stack["landmarks_3d"].astype(np.float32),
                "landmarks_2d": landmarks_2d.astype(np.float32), "in_frame": inside.mean(-1).astype(np.float32),
                "frame_offset": -np.asarray(starts, np.int32), "fps": np.float32(FPS),
                "image_size": np.array([WIDTH, HEIGHT])}


def write_video(path: str, frames: np.ndarray) -> None:
    """(F, H, W, 3) uint8 BGR -> an mp4v file at FPS, through a temporary name (``atomic_output``)."""
    with atomic_output(path) as tmp:
        writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), FPS, (frames.shape[2], frames.shape[1]))
        if not writer.isOpened():
            raise RuntimeError(f"{tmp}: OpenCV cannot write mp4v video")
        for frame in frames:
            writer.write(frame)
        writer.release()


def write_multiview_clips(out: str, count: int, frames: int, views: int = 2, offset: int = 0, seed: int = 0,
                          progress: bool = True) -> str:
    """Render ``count`` clips into ``out`` (see the module doc); returns a one-line summary."""
    clips = MultiViewClips(views, seed)
    for clip in tqdm(range(count), desc=f"multi-view clips ({views} views)", unit="clip", disable=not progress):
        folder = os.path.join(out, f"clip_{clip:03d}")
        os.makedirs(folder, exist_ok=True)
        videos, cameras, truth = clips.render(clip, frames, offset)
        for v, video in enumerate(videos):
            write_video(os.path.join(folder, f"view{v}.mp4"), video)
        save_cameras(os.path.join(folder, "cameras.json"), cameras)
        with atomic_output(os.path.join(folder, "truth.npz")) as tmp:
            np.savez_compressed(tmp, **truth)
    return (f"{count} clip(s) of {frames} frames seen by {views} views ({WIDTH} x {HEIGHT}, {FPS:g} fps"
            f"{f', views 1.. start {offset} frames late' if offset else ''}) in {out}")
