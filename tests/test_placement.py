"""core.engine.placement: each hand is fitted from the world landmarks and from the network, and the
fit that lands closer to the 2D landmarks is kept, so 3D evidence that contradicts the 2D (here:
world landmarks of a different hand pose) does not drag the result off the photo."""

from __future__ import annotations

import numpy as np
import torch

from core.engine.detect import Detection
from core.engine.fitting import HandFitter
from core.engine.placement import HandPlacer
from core.hand_model import HandLayer, PosePrior, load_hand_model

FOCAL, WIDTH = 600.0, 640


def hand_points(fitter, pose, betas, wrist) -> np.ndarray:
    with torch.no_grad():
        return fitter.landmarks(torch.as_tensor(pose[None], dtype=torch.float32), torch.as_tensor(betas[None]),
                                torch.as_tensor(wrist[None], dtype=torch.float32))[0].numpy().astype(np.float64)


def test_the_start_that_explains_the_landmarks_is_kept():
    model = load_hand_model("open", "right")
    fitter = HandFitter(HandLayer(model), PosePrior(model))
    placer = HandPlacer(fitter, torch.device("cpu"), input_size=224)
    prior = PosePrior(model)
    true_pose = prior.sample(1, torch.Generator().manual_seed(3))[0].numpy().astype(np.float64)   # (16, 3)
    true_pose[0] = [2.9, 0.0, 0.0]                     # fingers up, palm to the camera
    betas = np.zeros(10, np.float32)
    wrist = np.array([0.02, 0.05, 0.5])
    K = np.array([[FOCAL, 0, WIDTH / 2], [0, FOCAL, 240], [0, 0, 1]])
    truth = hand_points(fitter, true_pose, betas, wrist)                         # (21, 3)
    pixels = truth[:, :2] / truth[:, 2:] * FOCAL + K[:2, 2]
    # world landmarks of another pose (a fist): they contradict the photo's 2D landmarks
    fist = true_pose.copy()
    fist[1:, 2] += 1.2
    wrong_world = hand_points(fitter, fist, betas, np.zeros(3))
    detection = Detection(box=np.r_[pixels.min(0), pixels.max(0)], side="right", score=0.99, keypoints_2d=pixels,
                          world_landmarks=wrong_world)
    side = float(np.ptp(pixels, axis=0).max()) * 1.5
    out = {"pose": (true_pose + np.random.default_rng(0).normal(0, 0.1, true_pose.shape))[None].astype(np.float32),
           "betas": betas[None], "joints_3d": (truth - truth[0])[None].astype(np.float32),
           "camera": np.array([[2 * FOCAL / (0.5 * side), 0.0, 0.0]], np.float32)}
    frames = [np.zeros((480, WIDTH, 3), np.uint8)]
    placed = placer.place(frames, [(0, detection)], out, [np.eye(3)], pixels.mean(0)[None], np.array([side]),
                          np.array([side / 1.5]), K[None])
    keypoints = placed[4][0]                                                     # (21, 2) pixels
    off = np.linalg.norm(keypoints - pixels, axis=-1).mean()
    assert off < 3.0                                                             # on the landmarks
    # the world-landmark start alone (no network start to choose) stays off them
    alone = HandPlacer(fitter, torch.device("cpu"), input_size=224)
    out_alone = dict(out, joints_3d=(wrong_world - wrong_world[0])[None].astype(np.float32), pose=fist[None].astype(np.float32))
    off_alone = np.linalg.norm(alone.place(frames, [(0, detection)], out_alone, [np.eye(3)], pixels.mean(0)[None],
                                           np.array([side]), np.array([side / 1.5]), K[None])[4][0] - pixels, axis=-1).mean()
    assert off_alone > 2 * off + 3.0


def test_closest_start_per_hand():
    # items 0 and 1 (network starts 0, 1); world starts 2 (item 1) and 3 (item 0)
    owner = np.array([0, 1, 1, 0])
    assert HandPlacer._closest(owner, np.array([0.5, 0.2, 0.3, 0.1]), 2).tolist() == [3, 1]
    assert HandPlacer._closest(owner, np.array([0.1, 0.2, 0.2, 0.4]), 2).tolist() == [0, 2]   # a tie: world
