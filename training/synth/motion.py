"""Motion of the hands in a rendered clip (training/synth/sequences.py): who moves where, and how.

Between keyframes each hand moves with a minimum-jerk profile (zero velocity and acceleration at
the keyframes, so the motion is smooth): finger poses from the project's pose prior (PosePrior,
the scene sampler's stream) or the flat open hand, slow (SLOW frames per move) or fast (FAST);
whole-hand orientations around "fingers up, palm or back to the camera", always slow; wrist
positions on the clip's script (``MotionScripts.hands``). Camera space: metres, x right, y down,
z forward.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from scipy.spatial.transform import Rotation, Slerp

from core.hand_model import HandLayer

from .scene import SceneSampler

DEPTH = 0.5                    # metres, wrist to camera
SLOW, FAST = (18, 28), (5, 9)  # frames per move
FAST_SHARE = 0.4               # fraction of finger moves that are fast
TILT = 0.5                     # radians: largest random turn of a keyframe orientation away from upright
BACK_SHARE = 0.3               # keyframes showing the back of the hand
OPEN_SHARE = 0.2               # keyframes with the flat open hand instead of a prior pose


def min_jerk(s: np.ndarray) -> np.ndarray:
    """Minimum-jerk profile 0 -> 1 on s in [0, 1]: zero velocity and acceleration at both ends."""
    return s ** 3 * (10 - 15 * s + 6 * s ** 2)


def keyframe_times(rng: np.random.Generator, frames: int, fast_share: float = FAST_SHARE) -> np.ndarray:
    """(K,) increasing frame times from 0 to at least frames - 1, moves slow or fast."""
    times = [0]
    while times[-1] < frames - 1:
        low, high = FAST if rng.random() < fast_share else SLOW
        times.append(times[-1] + int(rng.integers(low, high + 1)))
    return np.array(times)


def segment_phase(times: np.ndarray, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """For each frame: the keyframe segment it lies in (F,) and its eased progress in it (F,)."""
    t = np.arange(frames)
    segment = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 2)
    s = (t - times[segment]) / (times[segment + 1] - times[segment])
    return segment, min_jerk(s)


def interpolate_vectors(keys: np.ndarray, times: np.ndarray, frames: int) -> np.ndarray:
    """keys (K, ...) at keyframe ``times`` -> (F, ...) minimum-jerk interpolation."""
    segment, s = segment_phase(times, frames)
    s = s.reshape((-1,) + (1,) * (keys.ndim - 1))
    return keys[segment] + s * (keys[segment + 1] - keys[segment])


def interpolate_rotations(keys: np.ndarray, times: np.ndarray, frames: int) -> np.ndarray:
    """keys (K, 3) axis-angle -> (F, 3): slerp with the minimum-jerk progress."""
    segment, s = segment_phase(times, frames)
    out = np.empty((frames, 3))
    for k in np.unique(segment):
        slerp = Slerp([0.0, 1.0], Rotation.from_rotvec(keys[k:k + 2]))
        out[segment == k] = slerp(s[segment == k]).as_rotvec()
    return out


def upright(layer: HandLayer) -> np.ndarray:
    """(3, 3) rotation that turns the rest hand to fingers up (-y) with the palm to the camera (-z)."""
    with torch.no_grad():
        keypoints = layer(keypoints_only=True).keypoints[0].double().numpy()        # (21, 3) rest
    fingers = keypoints[9] - keypoints[0]
    fingers /= np.linalg.norm(fingers)
    palm = np.array([0.0, 0.0, 1.0]) - fingers[2] * fingers                       # palm faces +z at rest
    palm /= np.linalg.norm(palm)
    rest = np.stack([fingers, palm, np.cross(fingers, palm)], 1)
    f, p = np.array([0.0, -1.0, 0.0]), np.array([0.0, 0.0, -1.0])
    return np.stack([f, p, np.cross(f, p)], 1) @ rest.T


@dataclasses.dataclass
class HandScript:
    """One hand's motion over a clip: side, shape and per-frame pose and wrist position."""

    side: str
    betas: np.ndarray        # (10,)
    pose: np.ndarray         # (F, 16, 3) axis-angle; row 0 global orientation
    wrist: np.ndarray        # (F, 3) metres, camera space


class MotionScripts:
    """``hands(rng, clip, frames) -> [HandScript]``: the scripted hands of clip ``clip``. Finger
    poses come from ``sampler``'s pose prior; ``layers`` (side -> HandLayer) give the rest hands."""

    def __init__(self, sampler: SceneSampler, layers: dict):
        self.sampler = sampler
        self.upright = {side: upright(layer) for side, layer in layers.items()}

    def _orientations(self, rng, side: str, count: int) -> np.ndarray:
        """(count, 3) axis-angle keyframe orientations near upright, some showing the back."""
        keys = []
        for _ in range(count):
            turn = Rotation.from_rotvec(rng.normal(0, TILT / 2, 3).clip(-TILT, TILT))
            back = Rotation.from_rotvec([0.0, np.pi if rng.random() < BACK_SHARE else 0.0, 0.0])
            keys.append((turn * back * Rotation.from_matrix(self.upright[side])).as_rotvec())
        return np.array(keys)

    def _fingers(self, rng, side: str, count: int, index: int) -> np.ndarray:
        """(count, 15, 3) keyframe finger poses: the pose prior's, or the flat open hand."""
        poses = np.stack([self.sampler.finger_pose(index * 64 + k, side == "left")[1:] for k in range(count)])
        poses[rng.random(count) < OPEN_SHARE] = 0.0
        return poses.astype(np.float64)

    def _script(self, rng, side: str, frames: int, index: int, wrist_keys: np.ndarray,
                wrist_times: np.ndarray) -> HandScript:
        turns = keyframe_times(rng, frames, fast_share=0.0)    # a hand turns over in no less than SLOW frames
        times = keyframe_times(rng, frames)
        pose = np.concatenate([interpolate_rotations(self._orientations(rng, side, len(turns)), turns, frames)[:, None],
                               interpolate_vectors(self._fingers(rng, side, len(times), index), times, frames)], 1)
        betas = np.clip(rng.standard_normal(10), -2.0, 2.0)
        return HandScript(side, betas, pose, interpolate_vectors(wrist_keys, wrist_times, frames))

    def hands(self, rng, clip: int, frames: int) -> list[HandScript]:
        """Even clips: both hands approach, touch, cross and part. Odd clips: one hand that exits."""
        def jitter(n):
            return rng.uniform(-0.02, 0.02, (n, 3))

        beats = np.linspace(0, frames - 1, 6).round().astype(int)
        if clip % 2 == 0:
            near, far = DEPTH - 0.04, DEPTH + 0.04            # one hand passes in front of the other
            x = np.array([-0.16, -0.06, -0.015, 0.05, 0.14, 0.16])
            y = np.array([0.08, 0.07, 0.06, 0.06, 0.07, 0.08])
            first = np.stack([-x, y, np.full(6, near)], 1) + jitter(6)     # the left hand starts on the
            second = np.stack([x, y, np.full(6, far)], 1) + jitter(6)      # picture's right, facing the camera
            return [self._script(rng, "left", frames, 2 * clip, first, beats),
                    self._script(rng, "right", frames, 2 * clip + 1, second, beats)]
        side = "right" if rng.random() < 0.5 else "left"
        out = 0.42 * (1 if rng.random() < 0.5 else -1)     # wrist this far off centre: hand out of the picture
        x = np.array([0.0, 0.08 * np.sign(out), out, out, 0.04 * np.sign(out), -0.05 * np.sign(out)])
        y = np.array([0.08, 0.06, 0.07, 0.07, 0.09, 0.07])
        times = np.array([0, beats[1], beats[2], beats[2] + max(4, frames // 10), beats[4], frames - 1])
        keys = np.stack([x, y, np.full(6, DEPTH)], 1) + jitter(6)
        return [self._script(rng, side, frames, 2 * clip, keys, np.maximum.accumulate(times))]
