"""Video: keep each hand's identity across frames, share one shape per track, smooth over time.

Association is greedy per frame: a hand joins the live track of the same side whose last box
overlaps it most (IoU >= MIN_IOU, or centres closer than a box side; a track unseen for a while
counts a little less, so a hand found twice for a moment does not take its track over); a track
unseen for MAX_GAP frames ends; ``core.engine.track_links`` joins the pieces of one hand at the end. Frames where a track has no hand stay invalid (nothing is invented).
A hand that matches no track of its side but covers the place of the other side's hand of the
frame before is that hand with its side misread, unless it keeps the new side FLIP_CONFIRM frames:
such a flip is held as a tentative track and dropped when it does not last (the hand's own track
just misses those frames).

Smoothing is a One Euro filter (Casiez et al. 2012) run forwards and backwards and averaged, so
an offline video gets no lag. ``strength`` in [0, 1] is the one knob: 0 = off; higher lowers
the filter's minimum cut-off frequency (smoother, more lag-free blur of jitter).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from core.hand_model.rotations import axis_angle_to_matrix, matrix_to_axis_angle

from .detect import box_iou
from .pipeline import HandEstimate

MIN_IOU = 0.1
MAX_GAP = 15  # frames
FLIP_IOU = 0.5       # overlap with the other side's hand of the frame before that makes a side flip
FLIP_CONFIRM = 3     # frames a flipped side must last to become a track of its own
STALE = 0.98         # per frame a track went unseen, its match scores count this much less


@dataclasses.dataclass
class Track:
    """One hand over a video: per frame index, its estimate (absent = not seen)."""

    side: str
    frames: dict = dataclasses.field(default_factory=dict)   # frame number -> HandEstimate
    last_box: np.ndarray = None
    last_frame: int = -1
    tentative: bool = False      # a side flip not yet confirmed (see the module docstring)


def _close(track: Track, hand: HandEstimate) -> float:
    """Match score of a hand for a track: IoU, or a small positive score when the centres are near."""
    iou = box_iou(track.last_box, hand.box)
    if iou >= MIN_IOU:
        return iou
    a, b = track.last_box, hand.box
    distance = np.linalg.norm((a[:2] + a[2:]) / 2 - (b[:2] + b[2:]) / 2)
    return 0.05 if distance < max(a[2] - a[0], a[3] - a[1], 1.0) else 0.0


class Tracker:
    """Feed ``update(frame, hands)`` in frame order; ``tracks`` holds every track made."""

    def __init__(self):
        self._tracks: list[Track] = []

    @property
    def tracks(self) -> list[Track]:
        """The tracks made so far, side flips that did not last left out."""
        return [t for t in self._tracks if not t.tentative]

    def update(self, frame: int, hands: list[HandEstimate]) -> None:
        live = [t for t in self._tracks if frame - t.last_frame <= MAX_GAP]
        pairs = sorted(((_close(t, h) * STALE ** (frame - 1 - t.last_frame), ti, hi) for ti, t in enumerate(live)
                        for hi, h in enumerate(hands) if t.side == h.side), reverse=True)
        used_tracks, used_hands = set(), set()
        for score, ti, hi in pairs:
            if score <= 0 or ti in used_tracks or hi in used_hands:
                continue
            self._add(live[ti], frame, hands[hi])
            used_tracks.add(ti)
            used_hands.add(hi)
        for hi, hand in enumerate(hands):
            if hi not in used_hands:
                flipped = any(t.side != hand.side and not t.tentative and t.last_frame == frame - 1
                              and box_iou(t.last_box, hand.box) >= FLIP_IOU for t in live)
                track = Track(side=hand.side, tentative=flipped)
                self._tracks.append(track)
                self._add(track, frame, hand)

    @staticmethod
    def _add(track: Track, frame: int, hand: HandEstimate) -> None:
        track.frames[frame] = hand
        track.last_box, track.last_frame = hand.box, frame
        if track.tentative and len(track.frames) >= FLIP_CONFIRM:
            track.tentative = False


def one_euro(values: np.ndarray, fps: float, min_cutoff: float, beta: float = 0.5, d_cutoff: float = 1.0) -> np.ndarray:
    """One Euro filter of (N, D) samples at ``fps`` along axis 0 (one direction)."""
    def alpha(cutoff):
        tau = 1.0 / (2 * np.pi * cutoff)
        return 1.0 / (1.0 + tau * fps)

    out = np.empty_like(values)
    out[0] = values[0]
    derivative = np.zeros_like(values[0])
    a_d = alpha(d_cutoff)
    for i in range(1, len(values)):
        derivative = a_d * (values[i] - out[i - 1]) * fps + (1 - a_d) * derivative
        a = alpha(min_cutoff + beta * np.abs(derivative))
        out[i] = a * values[i] + (1 - a) * out[i - 1]
    return out


def _line_end(values: np.ndarray) -> np.ndarray:
    """(N, D) samples -> (D,) the value at sample 0 of the least-squares straight line through them."""
    t = np.arange(len(values), dtype=np.float64)
    design = np.stack([np.ones_like(t), t], axis=1)                             # (N, 2)
    coefficients = np.linalg.lstsq(design, values.reshape(len(values), -1), rcond=None)[0]
    return coefficients[0].reshape(values.shape[1:])


def smooth(values: np.ndarray, fps: float, strength: float) -> np.ndarray:
    """Zero-lag One Euro smoothing of (N, D) values: forward and backward passes averaged.
    strength 0 returns the values unchanged; 1 is the strongest (min cut-off 0.3 Hz).

    Both ends are padded first by odd reflection (as scipy's filtfilt pads) about the end value of a
    straight line fitted to the samples near that end: the padding carries the motion's trend on past
    the ends, so each pass arrives at the first and last real samples already moving with the hand
    instead of lagging behind it from a standstill, and one noisy end sample does not tilt it."""
    if strength <= 0 or len(values) < 3:
        return values
    min_cutoff = 10.0 ** (1.0 - 1.5 * float(np.clip(strength, 0.0, 1.0)))      # 10 Hz .. 0.3 Hz
    pad = min(len(values) - 1, max(3, int(round(fps / 2))))
    head = 2 * _line_end(values[:pad + 1]) - values[pad:0:-1]                   # (pad, D)
    tail = 2 * _line_end(values[::-1][:pad + 1]) - values[-2:-pad - 2:-1]       # (pad, D)
    padded = np.concatenate([head, values, tail])
    forward = one_euro(padded, fps, min_cutoff)
    backward = one_euro(padded[::-1], fps, min_cutoff)[::-1]
    return (0.5 * (forward + backward))[pad:pad + len(values)]


def smooth_rotations(pose: np.ndarray, fps: float, strength: float) -> np.ndarray:
    """(N, J, 3) axis-angle -> smoothed, through rotation matrices (no wrap-around jumps),
    re-orthonormalised by SVD."""
    if strength <= 0 or len(pose) < 3:
        return pose
    n, joints = pose.shape[:2]
    matrices = axis_angle_to_matrix(torch.as_tensor(pose, dtype=torch.float64)).numpy().reshape(n, joints * 9)
    matrices = smooth(matrices, fps, strength).reshape(n * joints, 3, 3)
    u, _, vt = np.linalg.svd(matrices)
    d = np.sign(np.linalg.det(u @ vt))
    u[:, :, -1] *= d[:, None]
    rotations = torch.as_tensor(u @ vt)
    return matrix_to_axis_angle(rotations).numpy().reshape(n, joints, 3).astype(pose.dtype)
