"""Whole-clip temporal estimate of one hand track, offline (zero lag): a confidence-weighted
smoothness solve in pose space, short gaps filled.

Every channel x (T,) of a track (the 9 entries of each joint's rotation matrix; the wrist's
place in the picture x/z, y/z and its log depth, log z with z in metres) is solved over the track's frames at once from the per-frame estimates y (T,)
and their weights c (T,) >= 0 (the frame's confidence; 0 where the hand was not seen):

    min_x  sum_t c_t (x_t - y_t)^2  +  lam * sum_t (x_{t-1} - 2 x_t + x_{t+1})^2

a Whittaker (Hodrick-Prescott) smoother: its normal equations (C + lam D^T D) x = C y, with C =
diag(c) and D the (T-2, T) second-difference matrix, are one symmetric positive-definite banded
(pentadiagonal) system, solved by banded Cholesky in O(T). Where c_t = 0 the data term vanishes
and the solution bridges the frame with the smoothest curve through its neighbours (a discrete
cubic spline), so a short gap is filled; a gap longer than MAX_FILL_SECONDS splits the track
into segments solved apart, and its frames stay invalid (filled with the nearest seen frame,
as nothing there can be trusted). A gap up to MAX_BRIDGE_SECONDS is filled too when the track
runs on both sides of it for at least BRIDGE_SUPPORT_SECONDS and the hand is inside the picture
(``inside``: the caller's judgement, core.engine.run: EDGE_MARGIN) in the frames just before and after
it: a hand tracked steadily up to and again from a gap, away from the picture's edges, was hidden for
a while (on the rendered clips: behind the other hand, 0.5-0.8 s, as hands cross), not one that left
the picture or was glimpsed between doubtful detections.

For a steady signal (c = 1) the solve is a zero-phase low-pass filter with gain
1 / (1 + 16 lam sin^4(pi f / fps)) at frequency f (Hz): ``lam = 1 / (16 sin^4(pi f_c / fps))``
puts its half-gain frequency at f_c. The user's knob ``strength`` in (0, 1] sets f_c
(``cutoff_hz``); the wrist's depth, which a single camera sees far less surely than its place in
the picture, gets DEPTH_LAM_FACTOR times the smoothing. Rotations are smoothed as matrices (no
wrap-around of angles) and put back on SO(3) by SVD afterwards. The constants were chosen on
rendered dev clips (``python -m training.synth --video DIR --seed 2|3 --frames 120``, scored by
``python -m training.evaluate --video DIR``): the default strength 0.5 (1.55 Hz) is about where
PA-MPJPE is lowest, with the acceleration error near the true motion's own.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.linalg import solveh_banded

from core.hand_model.rotations import axis_angle_to_matrix, matrix_to_axis_angle

MAX_FILL_SECONDS = 0.5        # gaps up to this long are filled (flagged interpolated); longer ones stay invalid ...
MAX_BRIDGE_SECONDS = 1.0      # ... unless up to this long, with the track running this long on both sides:
BRIDGE_SUPPORT_SECONDS = 0.5
CUTOFF_MAX_HZ = 12.0          # half-gain frequency at strength -> 0
CUTOFF_MIN_HZ = 0.2           # ... at strength 1 (log-linear between; the default 0.5: 1.55 Hz)
DEPTH_LAM_FACTOR = 10.0       # the wrist depth's lam over the image position's
FILL_STRENGTH = 0.5           # strength 0: seen frames are kept exactly; gaps are bridged as this strength bridges them
MIN_WEIGHT = 0.05             # a seen frame's weight is at least this (a detector score near 0 still counts)


def cutoff_hz(strength: float) -> float:
    """Smoothing strength in (0, 1] -> half-gain frequency (Hz), from CUTOFF_MAX_HZ down to CUTOFF_MIN_HZ."""
    s = float(np.clip(strength, 0.0, 1.0))
    return CUTOFF_MAX_HZ * (CUTOFF_MIN_HZ / CUTOFF_MAX_HZ) ** s


def smoothness_weight(cutoff: float, fps: float) -> float:
    """lam (units: the data weights' units) whose solve halves a steady signal's component at ``cutoff`` Hz."""
    normalised = min(float(cutoff) / float(fps), 0.5)            # cycles per frame, at most Nyquist
    return 1.0 / (16.0 * np.sin(np.pi * normalised) ** 4)


def whittaker(values: np.ndarray, weights: np.ndarray, lam: float) -> np.ndarray:
    """(T, D) observations, (T,) weights >= 0, lam >= 0 -> (T, D) the minimiser of
    sum_t w_t |x_t - y_t|^2 + lam sum_t |x_{t-1} - 2 x_t + x_{t+1}|^2, every column alike.
    Needs positive weight on at least two frames when T >= 3 (else the minimiser is not unique)."""
    values = np.asarray(values, np.float64)
    weights = np.asarray(weights, np.float64)
    count = len(values)
    if count < 3 or lam <= 0:
        return values.copy()
    # D^T D's bands: diagonal [1, 5, 6, ..., 6, 5, 1], first off-diagonal [-2, -4, ..., -4, -2], second all 1.
    main = np.full(count, 6.0)
    main[[0, -1]], main[[1, -2]] = 1.0, 5.0
    if count == 3:
        main[1] = 4.0
    first = np.full(count - 1, -4.0)
    first[[0, -1]] = -2.0
    bands = np.zeros((3, count))                                 # upper form: row 2 the diagonal
    bands[2] = weights + lam * main
    bands[1, 1:] = lam * first
    bands[0, 2:] = lam
    return solveh_banded(bands, weights[:, None] * values.reshape(count, -1)).reshape(values.shape)


def segments(seen: np.ndarray, max_gap: int, bridge_gap: int = 0, support: int = 0,
             inside: np.ndarray = None) -> list[slice]:
    """(T,) seen flags -> slices of runs of frames that start and end seen and have no unseen gap
    longer than ``max_gap`` frames inside, except gaps of at most ``bridge_gap`` frames between runs
    (so made) of at least ``support`` frames each, whose frames next to the gap are ``inside`` (T,)
    bool (None: all are; ``bridge_gap`` 0: no bridges)."""
    rows = np.flatnonzero(seen)
    if not len(rows):
        return []
    breaks = np.flatnonzero(np.diff(rows) > max_gap + 1)
    starts = np.concatenate([rows[:1], rows[breaks + 1]])
    ends = np.concatenate([rows[breaks], rows[-1:]])
    runs = [[int(a), int(b) + 1] for a, b in zip(starts, ends)]
    out = runs[:1]
    for run in runs[1:]:
        last = out[-1]
        if (run[0] - last[1] <= bridge_gap and min(last[1] - last[0], run[1] - run[0]) >= max(support, 1)
                and (inside is None or (inside[last[1] - 1] and inside[run[0]]))):
            last[1] = run[1]
        else:
            out.append(run)
    return [slice(a, b) for a, b in out]


def _to_ray(wrist: np.ndarray) -> np.ndarray:
    """(T, 3) camera-space points (z > 0) -> (T, 3) (x / z, y / z, log z): where the point is seen
    in the picture (normalised image coordinates) apart from how far along its ray it lies."""
    depth = np.maximum(wrist[:, 2:], 1e-6)
    return np.concatenate([wrist[:, :2] / depth, np.log(depth)], axis=1)


def _from_ray(ray: np.ndarray) -> np.ndarray:
    """The inverse of _to_ray."""
    depth = np.exp(ray[:, 2:])
    return np.concatenate([ray[:, :2] * depth, depth], axis=1)


def _nearest(rows: np.ndarray, count: int) -> np.ndarray:
    """(S,) sorted seen frame rows -> (count,) the nearest of them to each row 0..count-1 (earlier on a tie)."""
    index = np.arange(count)
    after = np.clip(np.searchsorted(rows, index), 0, len(rows) - 1)
    before = np.clip(after - 1, 0, len(rows) - 1)
    return np.where(np.abs(rows[before] - index) <= np.abs(rows[after] - index), rows[before], rows[after])


def _to_rotation(matrices: np.ndarray) -> np.ndarray:
    """(..., 3, 3) -> the nearest rotation matrices (SVD, determinant +1)."""
    u, _, vt = np.linalg.svd(matrices)
    d = np.sign(np.linalg.det(u @ vt))
    u[..., :, -1] *= d[..., None]
    return u @ vt


def solve_track(pose: np.ndarray, wrist: np.ndarray, confidence: np.ndarray, seen: np.ndarray,
                fps: float, strength: float, inside: np.ndarray = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One track's temporal estimate.

    pose (T, J, 3) axis-angle radians and wrist (T, 3) metres, camera space: the per-frame estimates
    (any finite value where not seen); confidence (T,) in [0, 1]; seen (T,) bool; fps of the frames;
    strength in [0, 1] (0: seen frames exactly as estimated, gaps still filled as FILL_STRENGTH fills them);
    inside (T,) bool: seen frames where the hand is inside the picture (None: all; see ``segments``).
    Returns (pose (T, J, 3), wrist (T, 3), interpolated (T,) bool: unseen frames filled by the solve).
    Frames of gaps longer than MAX_FILL_SECONDS (and not bridged: MAX_BRIDGE_SECONDS, BRIDGE_SUPPORT_SECONDS) come
    back as the nearest seen frame's result, not interpolated.
    """
    count, joints = pose.shape[:2]
    seen = np.asarray(seen, bool)
    rows = np.flatnonzero(seen)
    if not len(rows):
        raise ValueError("a track needs at least one seen frame")
    nearest = _nearest(rows, count)
    matrices = axis_angle_to_matrix(torch.as_tensor(pose, dtype=torch.float64)).numpy().reshape(count, joints * 9)
    wrist_dtype, wrist = np.asarray(wrist).dtype, np.asarray(wrist, np.float64)
    matrices, wrist = matrices[nearest], wrist[nearest]           # unseen frames: finite stand-ins (weight 0)
    weights = np.where(seen, np.maximum(np.asarray(confidence, np.float64), MIN_WEIGHT), 0.0)
    smooth = strength > 0 and fps > 0
    lam = smoothness_weight(cutoff_hz(strength if smooth else FILL_STRENGTH), fps) if fps > 0 else 0.0
    interpolated, solved = np.zeros(count, bool), np.zeros(count, bool)
    out_matrices, out_wrist = matrices.copy(), wrist.copy()
    for part in segments(seen, max(0, int(round(MAX_FILL_SECONDS * fps))), max(0, int(round(MAX_BRIDGE_SECONDS * fps))),
                         max(1, int(round(BRIDGE_SUPPORT_SECONDS * fps))), inside):
        w = weights[part]
        out_matrices[part] = whittaker(matrices[part], w, lam)
        ray = _to_ray(wrist[part])                                 # image position and log depth
        ray[:, :2] = whittaker(ray[:, :2], w, lam)
        ray[:, 2:] = whittaker(ray[:, 2:], w, lam * DEPTH_LAM_FACTOR)
        out_wrist[part] = _from_ray(ray)
        interpolated[part], solved[part] = ~seen[part], True
    if not smooth:                                                # per-frame: seen frames exactly as estimated
        out_matrices[seen], out_wrist[seen] = matrices[seen], wrist[seen]
    out_matrices[~solved] = out_matrices[nearest[~solved]]       # long gaps: the nearest seen frame's result
    out_wrist[~solved] = out_wrist[nearest[~solved]]
    rotations = _to_rotation(out_matrices.reshape(count * joints, 3, 3))
    out_pose = matrix_to_axis_angle(torch.as_tensor(rotations)).numpy().reshape(count, joints, 3)
    if not smooth:
        out_pose[seen] = pose[seen]
    return out_pose.astype(pose.dtype), out_wrist.astype(wrist_dtype), interpolated
