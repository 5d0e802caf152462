"""The rig from the hands alone: one hand seen by every camera over many frames gives 21 2D
correspondences per frame; with known intrinsics they fix each camera's pose up to scale, and the hand's
own size fixes the scale.

1. Camera v relative to camera 0: essential matrix of the normalised correspondences of the instants both
   see the hand (``cv2.findEssentialMat``, RANSAC), ``cv2.recoverPose`` (unit baseline). With 3+ cameras
   each baseline's length is set so that the hand's depths agree with camera 1's.
2. Bundle adjustment (``scipy.optimize.least_squares``, Huber loss) over the poses of cameras 1.. (camera
   1's baseline length held at 1), the landmarks triangulated from them; once more without the
   observations the first pass could not explain (bad landmarks, another hand taken); then jointly over
   the poses and every landmark's 3D position at every instant.
3. Scale: the median length of the rigid bones from the wrist to the index, middle and ring knuckles of
   the triangulated hand is set to that of the hand model's mean hand (its landmark points,
   ``core.hand_model.landmark_points``). A hand larger or
   smaller than the mean hand scales every baseline alike (a hand 5% larger: baselines 5% short).
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import cv2
import numpy as np
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from core.multiview.cameras import ViewCamera

from .projection import jacobian_sparsity, project, rotate
from .spec import CalibrationError

SCALE_BONES = ((0, 5), (0, 9), (0, 13))      # wrist -> index, middle, ring knuckle (keypoint order): rigid
MIN_HAND_FRAMES = 10                         # instants a camera must share with camera 0
RANSAC_PX = 2.0                              # essential-matrix inlier threshold, pixels
HUBER_PX = 2.0
OUTLIER_PX = 8.0                             # observations off by more after the first pass are dropped


@dataclasses.dataclass
class HandRig:
    """Cameras from the hands and how well they explain the landmarks."""

    cameras: list                 # ViewCamera per view, view 0 identity
    rms_before: np.ndarray        # (V,) landmark reprojection RMS (px) of the first estimate (inliers of pass 2)
    rms_after: np.ndarray         # (V,) after bundle adjustment (same observations)
    shared: list                  # (V,) instants each camera shares with camera 0
    dropped: float                # share of observations dropped as outliers
    scale: float                  # metres per unit of the unscaled rig (camera 1's baseline, metres)


def model_bone_lengths(betas: Optional[np.ndarray] = None, bones=SCALE_BONES, poses: int = 256) -> np.ndarray:
    """(B,) lengths (metres) of ``bones`` (keypoint index pairs) between the landmark points
    (``core.hand_model.landmark_points``: where a detector puts its landmarks) of the open hand model with
    shape ``betas`` (None: the mean hand): the median over ``poses`` natural poses of the pose prior (seeded).
    The knuckles hang rigidly from the wrist, but their landmarks move a little as the fingers bend."""
    import torch
    from core.hand_model import HandLayer, PosePrior, load_hand_model
    from core.hand_model.landmark_points import LandmarkPoints
    model = load_hand_model("open", "right")
    layer = HandLayer(model)
    with torch.no_grad():
        pose = PosePrior(model).sample(poses, torch.Generator().manual_seed(0))
        shape = torch.zeros(poses, layer.num_betas) if betas is None else \
            torch.as_tensor(np.asarray(betas, np.float32))[None].expand(poses, -1)
        points = LandmarkPoints("right")(layer(shape, pose)).double().numpy()                 # (n, 21, 3)
    return np.array([np.median(np.linalg.norm(points[:, a] - points[:, b], axis=1)) for a, b in bones])


def _normalised(pixels: np.ndarray, K: np.ndarray, distortion: Optional[np.ndarray]) -> np.ndarray:
    """(N, 2) pixels -> (N, 2) normalised image coordinates (distortion removed)."""
    return cv2.undistortPoints(pixels.reshape(-1, 1, 2).astype(np.float64), K,
                               None if distortion is None else distortion).reshape(-1, 2)


def triangulate(rvecs: np.ndarray, tvecs: np.ndarray, normalised: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Linear (DLT) triangulation of P points from V cameras: rvecs, tvecs (V, 3) (view 0 -> view v),
    normalised (V, P, 2), seen (V, P) bool -> (P, 3) in view 0's frame (NaN where fewer than 2 views)."""
    P = np.stack([np.hstack([Rotation.from_rotvec(r).as_matrix(), t[:, None]]) for r, t in zip(rvecs, tvecs)])
    rows = []
    for v in range(len(P)):
        x, y = normalised[v, :, 0:1], normalised[v, :, 1:2]
        w = seen[v][:, None].astype(np.float64)
        rows += [w * (x * P[v, 2] - P[v, 0]), w * (y * P[v, 2] - P[v, 1])]
    A = np.stack(rows, 1)                                            # (P, 2V, 4)
    X = np.linalg.svd(A)[2][:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        points = X[:, :3] / X[:, 3:4]
    points[seen.sum(0) < 2] = np.nan
    return points


def calibrate_from_hands(tracks: list[dict], intrinsics: list[tuple], names: list[str],
                         bone_lengths: Optional[np.ndarray] = None) -> HandRig:
    """Cameras from hand landmarks. tracks: per view, {instant: (21, 2) pixels} of the one hand;
    intrinsics: per view (K (3, 3), distortion (5,) or None, image_size (w, h) or None);
    bone_lengths: the SCALE_BONES lengths of the filmed hand (default: the model's mean hand)."""
    count = len(tracks)
    if count < 2:
        raise CalibrationError("calibration needs at least two clips")
    instants = sorted(set().union(*[set(t) for t in tracks]))
    index = {f: i for i, f in enumerate(instants)}
    seen_frames = np.zeros((count, len(instants)), bool)
    pixels = np.zeros((count, len(instants), 21, 2))
    for v, track in enumerate(tracks):
        for f, kp in track.items():
            seen_frames[v, index[f]] = True
            pixels[v, index[f]] = kp
    normalised = np.stack([_normalised(pixels[v].reshape(-1, 2), K, D).reshape(len(instants), 21, 2)
                           for v, (K, D, _) in enumerate(intrinsics)])
    shared = [int((seen_frames[0] & seen_frames[v]).sum()) for v in range(count)]
    shared[0] = 0
    for v in range(1, count):
        if shared[v] < MIN_HAND_FRAMES:
            raise CalibrationError(f"{names[v]}: sees the hand at the same time as {names[0]} in only {shared[v]} "
                                   f"sampled frame(s); at least {MIN_HAND_FRAMES} are needed (check --offsets, "
                                   "film one hand where every camera sees it, or lower --stride)")

    # 1. Pairwise relative poses from the essential matrix (unit baselines).
    rvecs, tvecs = np.zeros((count, 3)), np.zeros((count, 3))
    for v in range(1, count):
        both = seen_frames[0] & seen_frames[v]
        a, b = normalised[0, both].reshape(-1, 2), normalised[v, both].reshape(-1, 2)
        focal = 0.5 * (intrinsics[0][0][0, 0] + intrinsics[v][0][0, 0])
        E, mask = cv2.findEssentialMat(a, b, np.eye(3), cv2.RANSAC, 0.999, RANSAC_PX / focal)
        if E is None or E.shape != (3, 3):
            raise CalibrationError(f"{names[v]}: no consistent relative pose to {names[0]} from the hand "
                                   "landmarks (is it the same hand in both clips, and are the clips in sync?)")
        _, R, t, _ = cv2.recoverPose(E, a, b, np.eye(3), mask=mask)
        rvecs[v], tvecs[v] = Rotation.from_matrix(R).as_rotvec(), t.ravel()
    seen = np.repeat(seen_frames, 21, axis=1)                                  # (V, F*21)
    flat = normalised.reshape(count, -1, 2)
    if count > 2:              # one scale: each pair's hand depths agree with pair (0, 1)'s
        reference = triangulate(rvecs[:2], tvecs[:2], flat[:2], seen[:2])
        for v in range(2, count):
            pair = triangulate(rvecs[[0, v]], tvecs[[0, v]], flat[[0, v]], seen[[0, v]])
            ok = np.isfinite(reference[:, 2]) & np.isfinite(pair[:, 2]) & (pair[:, 2] > 0) & (reference[:, 2] > 0)
            if ok.sum() < 21:
                raise CalibrationError(f"{names[v]}: shares too few hand frames with {names[0]} and {names[1]} "
                                       "to fix its baseline's length")
            tvecs[v] *= np.median(reference[ok, 2] / pair[ok, 2])

    # 2. Bundle adjustment. First over the camera poses alone, the landmarks triangulated (DLT) from them at
    # every step (variable projection: a handful of parameters, converges where a joint solve over thousands
    # of points crawls); outliers dropped; then jointly over poses and points.
    points0 = triangulate(rvecs, tvecs, flat, seen)
    usable = np.isfinite(points0).all(1) & (points0[:, 2] > 0)
    obs_view, obs_point = np.nonzero(seen & usable[None])
    obs_pixels = pixels.reshape(count, -1, 2)[obs_view, obs_point]
    Ks = np.stack([K for K, _, _ in intrinsics])
    Ds = np.stack([np.zeros(5) if D is None else np.pad(np.asarray(D, np.float64).ravel()[:5],
                                                        (0, max(0, 5 - np.size(D)))) for _, D, _ in intrinsics])
    n_cam, n_points = 6 * (count - 1), seen.shape[1]

    def rig(x):
        cam = np.vstack([np.zeros(6), x[:n_cam].reshape(-1, 6)])
        cam[1, 3:] /= np.linalg.norm(cam[1, 3:])                             # gauge: baseline 0-1 is 1
        return cam

    def reprojection(cam, points, keep):
        c = cam[obs_view[keep]]
        in_view = rotate(c[:, :3], points[obs_point[keep]]) + c[:, 3:]
        return (project(in_view, Ks[obs_view[keep]], Ds[obs_view[keep]]) - obs_pixels[keep]).ravel()

    def kept(keep):
        """``keep`` less the observations of points left with fewer than two; and the (V, P) mask."""
        mask = np.zeros_like(seen)
        mask[obs_view[keep], obs_point[keep]] = True
        keep = keep & (mask.sum(0) >= 2)[obs_point]
        mask[:] = False
        mask[obs_view[keep], obs_point[keep]] = True
        return keep, mask

    def points_of(cam, mask):
        return np.nan_to_num(triangulate(cam[:, :3], cam[:, 3:], flat, mask))

    def solve_rig(x, keep):
        keep, mask = kept(keep)
        fit = least_squares(lambda x: reprojection(rig(x), points_of(rig(x), mask), keep), x, loss="huber",
                            f_scale=HUBER_PX, x_scale="jac", max_nfev=60)
        return fit.x

    def polish(x, keep):
        keep, mask = kept(keep)
        points = points_of(rig(x), mask)
        sparsity = jacobian_sparsity(n_cam + 3 * n_points, [(n_cam + 3 * obs_point[keep], 3, None),
                                                            (6 * (obs_view[keep] - 1), 6, obs_view[keep] > 0)])
        fit = least_squares(lambda y: reprojection(rig(y), y[n_cam:].reshape(-1, 3), keep),
                            np.concatenate([x, points.ravel()]), jac_sparsity=sparsity, loss="huber",
                            f_scale=HUBER_PX, x_scale="jac", max_nfev=30)
        return fit.x[:n_cam], fit.x[n_cam:].reshape(-1, 3)

    def rms(cam, points, keep):
        err = reprojection(cam, points, keep).reshape(-1, 2)
        return np.array([np.sqrt(np.mean(np.sum(err[obs_view[keep] == v] ** 2, 1))) for v in range(count)])

    x0 = np.hstack([rvecs[1:], tvecs[1:]]).ravel()
    everything = np.ones(obs_view.size, bool)
    x1 = solve_rig(x0, everything)
    errors = np.linalg.norm(reprojection(rig(x1), points_of(rig(x1), kept(everything)[1]), everything).reshape(-1, 2),
                            axis=1)
    keep, mask = kept(errors <= max(OUTLIER_PX, 4 * 1.4826 * np.median(errors)))
    x2, points = polish(solve_rig(x1, keep), keep)
    before, after = rms(rig(x0), points_of(rig(x0), mask), keep), rms(rig(x2), points, keep)

    # 3. Scale from the hand's rigid bones.
    cam = rig(x2)
    hand = np.where(mask.sum(0)[:, None] >= 2, points, np.nan).reshape(len(instants), 21, 3)
    lengths = np.stack([np.linalg.norm(hand[:, a] - hand[:, b], axis=1) for a, b in SCALE_BONES], 1)   # (F, B)
    measured = np.nanmedian(lengths, axis=0)
    truth = model_bone_lengths() if bone_lengths is None else np.asarray(bone_lengths, np.float64)
    if not np.all(np.isfinite(measured)):
        raise CalibrationError("the hand's knuckles were never triangulated; no scale for the rig")
    scale = float(truth.sum() / measured.sum())
    cameras = []
    for v in range(count):
        K, D, size = intrinsics[v]
        R = Rotation.from_rotvec(cam[v, :3]).as_matrix() if v else np.eye(3)
        cameras.append(ViewCamera(np.asarray(K, np.float64), R, cam[v, 3:] * scale if v else np.zeros(3), size,
                                  None if D is None else np.asarray(D, np.float64),
                                  {"name": names[v], "reprojection_px": round(float(after[v]), 4),
                                   "scale_from": "hand bones (mean hand)" if bone_lengths is None else "hand bones"}))
    return HandRig(cameras, before, after, shared, float(1 - keep.mean()), scale)


def find_hands(path: str, stride: int, offset: int = 0, device: str = "cpu",
               progress: Optional[callable] = None) -> tuple[dict, tuple]:
    """The hands in every ``stride``-th instant of clip ``path`` by the engine's video detector
    (``core.engine.detect.HandDetector``): ({"right": {instant: (21, 2) pixels}, "left": {...}, "alone":
    {...}}, image size (width, height)): the best-scored hand of each side per instant, and under "alone"
    the hand of each instant with one hand only, whatever side the detector called it."""
    from core.engine.detect import HandDetector
    from .board import clip_frames
    found, size, frames = {"right": {}, "left": {}, "alone": {}}, None, 0
    with HandDetector(max_hands=2, video=True, device=device) as detector:
        for instant, bgr in clip_frames(path, stride, offset):
            frames += 1
            size = (bgr.shape[1], bgr.shape[0])
            hands = [d for d in detector.detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)) if d.keypoints_2d is not None]
            for d in sorted(hands, key=lambda d: -d.score):
                if instant not in found[d.side]:
                    found[d.side][instant] = np.asarray(d.keypoints_2d, np.float64)
            if len(hands) == 1:
                found["alone"][instant] = np.asarray(hands[0].keypoints_2d, np.float64)
            if progress is not None:
                progress(frames, len(found["right"]) + len(found["left"]))
    if size is None:
        raise CalibrationError(f"{path}: no frames could be read")
    return found, size


def choose_side(found: list[dict], side: str) -> str:
    """Which hand's landmarks to use: ``side`` ("right" | "left"); with "auto", "alone" (every hand found
    when no clip ever shows two: a detector's side call can differ between views of one hand), else the
    side seen at the same instant by every clip most often."""
    if side != "auto":
        return side
    if all(len(f["alone"]) == len(set(f["right"]) | set(f["left"])) for f in found):
        return "alone"

    def together(s):
        common = set(found[0][s])
        for f in found[1:]:
            common &= set(f[s])
        return len(common)
    return max(("right", "left"), key=together)
