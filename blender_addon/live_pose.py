"""A live record's hand -> the rig's pose channels, smoothed causally (numpy only, no bpy).

The live rig is the mean-shape hand of the engine's rig file (``handcap live --rig``), so its rest
wrist may sit a little off the shape the engine estimated for this frame: the root bone is placed
so that the rig's wrist lands on the record's ``joints_3d[0]`` (the captured wrist), and every bone
turns by the record's ``pose`` (rig_math.basis_quaternions, as an imported capture is keyed).

Smoothing is causal (a live view cannot look ahead): One Euro filters, whose cutoff falls with the
panel's Smoothing and rises with the hand's speed (``CausalSmoother``). What it adds to the latency
is the filter's lag: for a hand moving steadily at v, 1 / (2 pi (f + beta v)) with f the cutoff at
rest (Smoothing 0.5: 3.2 Hz, 50 ms when nearly still; 20 ms for a wrist moving at 0.25 m/s; 160 ms
and 27 ms at Smoothing 1). Strength 0 shows every record as it is, adding nothing.
"""

from __future__ import annotations

import numpy as np

from . import rig_math


def timer_interval(engine_fps: float) -> float:
    """Seconds between the Live Capture timer's polls: twice the engine's record rate, so a record waits
    at most half a frame to be shown (60/s until the rate is known; within 1/120 .. 1/15 s)."""
    if not engine_fps or engine_fps <= 0:
        return 1.0 / 60.0
    return float(np.clip(0.5 / engine_fps, 1.0 / 120.0, 1.0 / 15.0))


def best_hands(record: dict) -> dict:
    """{side: hand} of one frame record: the most confident hand of each side."""
    best = {}
    for hand in record.get("hands", ()):
        side = hand.get("side")
        if side in ("right", "left") and (side not in best or hand.get("confidence", 0) > best[side].get("confidence", 0)):
            best[side] = hand
    return best


def pose_channels(hand: dict, bone_rotations: np.ndarray, rest_wrist: np.ndarray) -> tuple:
    """(quaternions (J, 4) w-first, root location (3,) bone space) for one record hand.

    bone_rotations (J, 3, 3): the rig's rest bone rotations (armature space = camera space, metres);
    rest_wrist (3,): the rig's rest wrist position."""
    pose = np.asarray(hand["pose"], np.float64)[None]                      # (1, J, 3) axis-angle
    wrist = np.asarray(hand["joints_3d"], np.float64)[0]                   # (3,) camera space
    quats = rig_math.basis_quaternions(pose, bone_rotations)[0]
    location = rig_math.root_locations((wrist - np.asarray(rest_wrist, np.float64))[None], bone_rotations[0])[0]
    return quats, location


# One Euro settings: Smoothing s in (0, 1] -> the filter's cutoff at rest MAX_CUTOFF * (MIN_CUTOFF / MAX_CUTOFF)^s Hz
MAX_CUTOFF, MIN_CUTOFF = 10.0, 1.0          # Hz: s -> 0 and s = 1 (0.5: 3.2 Hz)
BETA_ROTATION = 2.0                         # Hz per unit/s of a joint's quaternion speed (about rad/s / 2)
BETA_LOCATION = 20.0                        # Hz per m/s of the wrist's speed
DERIVATIVE_CUTOFF = 1.0                     # Hz: the speed itself is smoothed this much
FRAME_TIME = 1.0 / 30.0                     # s: between records without a usable time


def smoothing_factor(cutoff, dt: float):
    """The exponential filter's share of a new value for ``cutoff`` Hz (a float or an array) at ``dt`` s."""
    tau = 1.0 / (2.0 * np.pi * np.asarray(cutoff, np.float64))
    return 1.0 / (1.0 + tau / dt)


class OneEuro:
    """The One Euro filter (Casiez, Roussel, Vogel, CHI 2012) of a stream of (K, D) arrays: each of the
    K rows is smoothed by an exponential filter whose cutoff rises with that row's speed (its norm), so
    a still hand is steadied and a moving one follows with little lag. Causal: each output depends on
    the values given so far only. For a row moving steadily at speed v, the output trails the input by
    about 1 / (2 pi (min_cutoff + beta v)) seconds."""

    def __init__(self, min_cutoff: float, beta: float):
        self.min_cutoff, self.beta = float(min_cutoff), float(beta)
        self.value = self.speed = self.time = None

    def __call__(self, value: np.ndarray, time: float) -> np.ndarray:
        value = np.asarray(value, np.float64)
        if self.value is None:
            self.value, self.speed, self.time = value.copy(), np.zeros(value.shape[:-1]), time
            return self.value
        dt = time - self.time if time is not None and self.time is not None and time > self.time else FRAME_TIME
        self.time = time if time is not None else (self.time or 0.0) + dt
        speed = np.linalg.norm(value - self.value, axis=-1) / dt
        self.speed = self.speed + smoothing_factor(DERIVATIVE_CUTOFF, dt) * (speed - self.speed)
        share = smoothing_factor(self.min_cutoff + self.beta * self.speed, dt)[..., None]
        self.value = self.value + share * (value - self.value)
        return self.value


class CausalSmoother:
    """Smooths (quaternions (J, 4), location (3,)) pairs as they come, with the record's ``time`` (s),
    by One Euro filters (the panel's Smoothing ``strength`` in [0, 1]: 0 shows every record as it is);
    quaternions are filtered in one hemisphere and renormalised. ``reset`` forgets the past."""

    def __init__(self, strength: float = 0.5):
        strength = float(np.clip(strength, 0.0, 1.0))
        self.off = strength <= 0.0
        cutoff = MAX_CUTOFF * (MIN_CUTOFF / MAX_CUTOFF) ** strength
        self.rotation, self.location = OneEuro(cutoff, BETA_ROTATION), OneEuro(cutoff, BETA_LOCATION)

    def reset(self) -> None:
        for part in (self.rotation, self.location):
            part.value = part.speed = part.time = None

    def __call__(self, quats: np.ndarray, location: np.ndarray, time: float = None) -> tuple:
        quats, location = np.asarray(quats, np.float64), np.asarray(location, np.float64)
        if self.off:
            return quats, location
        if self.rotation.value is not None:          # the same rotation, in the hemisphere of the last one
            quats = np.where(np.sum(quats * self.rotation.value, axis=-1, keepdims=True) < 0, -quats, quats)
        smoothed = self.rotation(quats, time)
        smoothed = smoothed / np.maximum(np.linalg.norm(smoothed, axis=-1, keepdims=True), 1e-12)
        return smoothed, self.location(location[None], time)[0]
