"""The rig from the board: each camera's pose relative to the first, then one bundle adjustment.

1. The board's pose in every view (``intrinsics.board_pose``).
2. Camera v's pose relative to a camera u already placed (first: view 0), from the instants both see the
   board: x_v = T_bv T_bu^-1 x_u per instant, made robust by ``projection.robust_mean_pose``; each camera
   joins through the placed camera it shares the most instants with.
3. ``scipy.optimize.least_squares`` (Huber loss, 1 px) over the poses of cameras 1.. and of the board at
   every instant (and, on request, each camera's fx, fy, cx, cy, k1, k2), minimising every corner's
   reprojection error in every view. Its RMS per camera is reported before and after.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from core.multiview.cameras import ViewCamera

from .board import BoardView
from .intrinsics import Intrinsics, board_pose
from .projection import compose, invert, jacobian_sparsity, project, robust_mean_pose, rotate
from .spec import BoardSpec, CalibrationError

MIN_SHARED = 3          # instants two cameras must both see the board in to be placed relative to each other
HUBER_PX = 1.0


@dataclasses.dataclass
class Rig:
    """The calibrated cameras and how well they explain the board."""

    cameras: list                   # ViewCamera per view, view 0 identity
    rms_before: np.ndarray          # (V,) corner reprojection RMS (px) of the first estimate
    rms_after: np.ndarray           # (V,) after bundle adjustment
    shared: list                    # (V,) instants each camera was placed from (view 0: 0)
    instants: int                   # board poses adjusted


def _relative_poses(poses: list[dict], names: list[str]) -> tuple[list, list]:
    """(rvec, tvec) of every view (view 0 -> view v) and the instants each was placed from."""
    count = len(poses)
    placed = {0: (np.zeros(3), np.zeros(3))}
    shared_used = [0] * count
    while len(placed) < count:
        best = None
        for v in range(count):
            if v in placed:
                continue
            for u in placed:
                shared = sorted(set(poses[u]) & set(poses[v]))
                if best is None or len(shared) > len(best[2]):
                    best = (v, u, shared)
        v, u, shared = best
        if len(shared) < MIN_SHARED:
            missing = [names[w] for w in range(count) if w not in placed]
            raise CalibrationError(f"{names[v]}: sees the board at the same time as an already placed camera in only "
                                   f"{len(shared)} sampled frame(s); at least {MIN_SHARED} are needed (cameras not "
                                   f"placed: {', '.join(missing)}; check --offsets, film the board where both cameras "
                                   "see it, or lower --stride)")
        relative = [compose(*poses[v][i], *invert(*poses[u][i])) for i in shared]      # view u -> view v
        r, t, _ = robust_mean_pose(np.array([p[0] for p in relative]), np.array([p[1] for p in relative]))
        placed[v] = compose(r, t, *placed[u])
        shared_used[v] = len(shared)
    return [placed[v] for v in range(count)], shared_used


def solve_rig(spec: BoardSpec, views: list[list[BoardView]], intrinsics: list[Intrinsics], names: list[str],
              refine_intrinsics: bool = False) -> Rig:
    """Cameras of every clip from their board ``views`` and ``intrinsics`` (one list per clip, in order)."""
    count = len(views)
    poses = [{v.instant: board_pose(spec, v, c.K, c.distortion) for v in vs} for vs, c in zip(views, intrinsics)]
    cams, shared = _relative_poses(poses, names)

    # Board pose per instant in view 0's frame: of the poses each view seeing it gives, the one that
    # explains every view's corners best (one view's planar pose can be the mirror-flipped one).
    instants = sorted(set().union(*[set(p) for p in poses]))
    index = {f: i for i, f in enumerate(instants)}
    seen = [{b.instant: b for b in vs} for vs in views]
    corners = spec.corners()
    boards = np.zeros((len(instants), 6))
    for f in instants:
        watching = [w for w in range(count) if f in poses[w]]

        def error(candidate):
            total = 0.0
            for w in watching:
                r, t = compose(*cams[w], *candidate)
                pixels = cv2.projectPoints(corners[seen[w][f].ids], r, t, intrinsics[w].K, intrinsics[w].distortion)[0]
                total += float(np.sum((pixels.reshape(-1, 2) - seen[w][f].pixels) ** 2))
            return total

        candidates = [compose(*invert(*cams[w]), *poses[w][f]) for w in watching]
        boards[index[f]] = np.concatenate(min(candidates, key=error))

    obs_view, obs_board, obs_points, obs_pixels = [], [], [], []
    for v, vs in enumerate(views):
        for b in vs:
            obs_view.append(np.full(len(b.ids), v))
            obs_board.append(np.full(len(b.ids), index[b.instant]))
            obs_points.append(corners[b.ids])
            obs_pixels.append(b.pixels)
    obs_view, obs_board = np.concatenate(obs_view), np.concatenate(obs_board)
    obs_points, obs_pixels = np.concatenate(obs_points), np.concatenate(obs_pixels)

    K0 = np.stack([c.K for c in intrinsics])
    D0 = np.stack([c.distortion for c in intrinsics])
    n_cam, n_board = 6 * (count - 1), 6 * len(instants)
    n_intr = 6 * count if refine_intrinsics else 0

    def unpack(x):
        cam = np.vstack([np.zeros(6), x[:n_cam].reshape(-1, 6)])
        board = x[n_cam:n_cam + n_board].reshape(-1, 6)
        K, D = K0.copy(), D0.copy()
        if refine_intrinsics:
            intr = x[n_cam + n_board:].reshape(count, 6)
            K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2] = intr[:, 0], intr[:, 1], intr[:, 2], intr[:, 3]
            D[:, 0], D[:, 1] = intr[:, 4], intr[:, 5]
        return cam, board, K, D

    def residuals(x):
        cam, board, K, D = unpack(x)
        b, c = board[obs_board], cam[obs_view]
        in_first = rotate(b[:, :3], obs_points) + b[:, 3:]
        in_view = rotate(c[:, :3], in_first) + c[:, 3:]
        return (project(in_view, K[obs_view], D[obs_view]) - obs_pixels).ravel()

    x0 = np.concatenate([np.concatenate(cams[1:]).ravel() if count > 1 else np.zeros(0), boards.ravel()]
                        + ([np.concatenate([K0[:, 0, 0:1], K0[:, 1, 1:2], K0[:, 0, 2:3], K0[:, 1, 2:3], D0[:, :2]],
                                           1).ravel()] if refine_intrinsics else []))
    sparsity = jacobian_sparsity(x0.size, [(n_cam + 6 * obs_board, 6, None), (6 * (obs_view - 1), 6, obs_view > 0)]
                                 + ([(n_cam + n_board + 6 * obs_view, 6, None)] if refine_intrinsics else []))

    def rms(x):
        err = residuals(x).reshape(-1, 2)
        return np.array([np.sqrt(np.mean(np.sum(err[obs_view == v] ** 2, 1))) for v in range(count)])

    before = rms(x0)
    fit = least_squares(residuals, x0, jac_sparsity=sparsity, loss="huber", f_scale=HUBER_PX, x_scale="jac",
                        method="trf", max_nfev=200)
    after = rms(fit.x)
    cam, _, K, D = unpack(fit.x)
    cameras = []
    for v in range(count):
        R = Rotation.from_rotvec(cam[v, :3]).as_matrix() if v else np.eye(3)
        t = cam[v, 3:] if v else np.zeros(3)
        cameras.append(ViewCamera(K[v], R, t, intrinsics[v].image_size, D[v].copy(),
                                  {"name": names[v], "reprojection_px": round(float(after[v]), 4),
                                   "intrinsics_rms_px": round(intrinsics[v].rms_px, 4)}))
    return Rig(cameras, before, after, shared, len(instants))
