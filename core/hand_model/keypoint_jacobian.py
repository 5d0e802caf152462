"""A hand's 21 landmark points and their exact derivatives, in numpy, for the engine's least-squares fit.

The torch layer (``HandLayer(keypoints_only=True)`` + ``LandmarkPoints``) computes the same points,
but a fit of one or two hands is made of a few hundred tiny operations, and torch spends ~20 us
on each: the points alone cost ~3 ms there, a Jacobian by autograd tens of ms. Here the points and
their Jacobian come from one pass of batched numpy (float64), so a Gauss-Newton step costs well
under a millisecond per batch of hands (tests/test_least_squares.py checks both against the torch
layer and finite differences).

Every point is linear in the joints' world rotations G_j: P = J_0 + sum_j G_j y_j (the root pivots
on its rest position J_0; a joint's y_j is the rest offset to its child on the way to the point,
a skinned tip adds w_tj (tip - J_j), a landmark point its turned offset). Turning joint a by a small
delta in its own frame turns everything below it about J_a: dP = -[u_a]x G_a delta, with
u_a = sum_{j below or at a} G_j y_j; with axis-angle poses delta = Jr(theta_a) dtheta (the right
Jacobian of SO(3)). Shape moves the rest joints and tips linearly, and the landmark offsets scale
with the hand's length.

Units: metres, radians. Right hands (the fit mirrors left ones).
"""

from __future__ import annotations

import numpy as np

SMALL_ANGLE_SQ = 1e-8


def skew(v: np.ndarray) -> np.ndarray:
    """(..., 3) -> (..., 3, 3) cross-product matrices: skew(a) @ b = a x b."""
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    o = np.zeros_like(x)
    return np.stack([o, -z, y, z, o, -x, -y, x, o], axis=-1).reshape(v.shape + (3,))


def rotations_and_jacobians(pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(..., 3) axis-angle -> (R (..., 3, 3) Rodrigues, Jr (..., 3, 3) the right Jacobian of SO(3):
    R(theta + d) = R(theta) exp([Jr(theta) d]x) to first order)."""
    t2 = (pose * pose).sum(-1)[..., None, None]
    small = t2 < SMALL_ANGLE_SQ
    safe = np.where(small, 1.0, t2)
    t = np.sqrt(safe)
    a = np.where(small, 1.0 - t2 / 6.0, np.sin(t) / t)                     # sin t / t
    b = np.where(small, 0.5 - t2 / 24.0, (1.0 - np.cos(t)) / safe)         # (1 - cos t) / t^2
    c = np.where(small, 1.0 / 6.0 - t2 / 120.0, (t - np.sin(t)) / (safe * t))   # (t - sin t) / t^3
    k = skew(pose)
    kk = k @ k
    eye = np.eye(3)
    return eye + a * k + b * kk, eye - b * k + c * kk


class KeypointJacobian:
    """``points(pose, betas, weight)`` -> landmark points relative to the wrist keypoint and their
    Jacobians with respect to pose and shape, for a right hand model.

    Built from a torch ``HandLayer`` (its keypoint buffers) and ``LandmarkPoints`` (offsets), read once.
    """

    def __init__(self, layer, landmark_points):
        def array(t):
            return t.detach().cpu().double().numpy()
        self.parents = list(layer.parents)
        self.joint_template, self.joint_dirs = array(layer.joint_template), array(layer.joint_shapedirs)  # (16,3), (16,3,S)
        self.tip_template, self.tip_dirs = array(layer.tip_template), array(layer.tip_shapedirs)          # (5,3), (5,3,S)
        self.tip_weights = array(layer.tip_weights)                                                       # (5, 16)
        self.tip_posedirs = array(layer.tip_posedirs) if layer.has_correctives else None                  # (135, 15)
        self.order = array(layer.keypoint_order).astype(int)                                              # (21,)
        self.offsets = array(landmark_points.offsets)                                                     # (21, 3)
        self.attachment = array(landmark_points.attachment)                                               # (21, 16)
        self.template_length = float(landmark_points.template_length)
        n = len(self.parents)
        path = np.zeros((n, n))                       # path[j, i]: joint i (not the root) lies on the way root -> j
        below = np.zeros((n, n))                      # below[a, j]: j is a or lies below it
        for j in range(n):
            i = j
            while i >= 0:
                below[i, j] = 1.0
                if i > 0:
                    path[j, i] = 1.0
                i = self.parents[i]
        parent_of = np.zeros((n, n))                  # parent_of[i, k]: k is i's parent
        for i in range(1, n):
            parent_of[i, self.parents[i]] = 1.0
        self.path, self.below = path, below
        self.joint_share = np.einsum("ji,ik->jki", path, parent_of)          # (16, 16, 16): joint j's offset i acts at joint k
        self.levels = _levels(self.parents)

    def points(self, pose: np.ndarray, betas: np.ndarray, weight: np.ndarray, derivatives: bool = True):
        """pose (N, 16, 3) axis-angle, betas (N, S), weight (N,) landmark-offset weight (1: detector
        landmarks, 0: the model's own keypoints) -> (points (N, 21, 3) minus the wrist keypoint,
        d points / d pose (N, 21, 3, 48), d points / d betas (N, 21, 3, S)); the derivatives are
        None when not asked for."""
        N, n = pose.shape[0], len(self.parents)
        R, Jr = rotations_and_jacobians(pose)                                          # (N, 16, 3, 3)
        rest = self.joint_template + np.einsum("jcs,ns->njc", self.joint_dirs, betas)  # (N, 16, 3)
        tips = self.tip_template + np.einsum("tcs,ns->ntc", self.tip_dirs, betas)      # (N, 5, 3)
        if self.tip_posedirs is not None:   # pose correctives: in the points, left out of the Jacobian
            features = (R[:, 1:] - np.eye(3)).reshape(N, -1)
            tips = tips + (features @ self.tip_posedirs).reshape(N, 5, 3)
        G, joints = self._chain(R, rest)
        tip_local = tips[:, :, None] - rest[:, None]                                   # (N, 5, 16, 3)
        tip_turned = (G[:, None] @ tip_local[..., None])[..., 0]                     # (N, 5, 16, 3): G_j (tip - J_j)
        tip_points = np.einsum("tj,ntjc->ntc", self.tip_weights, tip_turned + joints[:, None])
        keypoints = np.concatenate([joints, tip_points], axis=1)[:, self.order]        # (N, 21, 3)
        length = np.linalg.norm(rest[:, 4] - rest[:, 0], axis=-1)                      # (N,)
        scale = weight * length / self.template_length
        turned = (G @ self.offsets.T).transpose(0, 3, 1, 2) * self.attachment[None, :, :, None]   # (N, 21, 16, 3): A_kj G_j o_k
        points = keypoints + scale[:, None, None] * turned.sum(2) - rest[:, None, 0]
        if not derivatives:
            return points, None, None

        # per point and joint k: the world vector that joint k's rotation carries (G_k y_k)
        offsets = np.zeros_like(rest)                                                  # rest offset of each joint from its parent
        offsets[:, 1:] = rest[:, 1:] - rest[:, self.parents[1:]]
        parent_G = G[:, [max(p, 0) for p in self.parents]]
        world_offsets = np.einsum("nicd,nid->nic", parent_G, offsets)                  # (N, 16, 3); row 0 unused
        joint_parts = (self.joint_share.reshape(-1, n) @ world_offsets).reshape(N, n, n, 3)   # (N, 16, 16, 3)
        tip_parts = (self.tip_weights[None, :, :, None] * tip_turned
                     + np.einsum("tj,njkc->ntkc", self.tip_weights, joint_parts))
        parts = np.concatenate([joint_parts, tip_parts], axis=1)[:, self.order]        # (N, 21, 16, 3)
        parts = parts + scale[:, None, None, None] * turned

        # pose: dP/dtheta_a = -[u_a]x G_a Jr_a, u_a = sum of the parts at and below joint a
        carried = self.below @ parts                                                   # (N, 21, 16, 3)
        d_pose = -skew(carried) @ (G @ Jr)[:, None]                                    # (N, 21, 16, 3, 3)
        d_pose = d_pose.transpose(0, 1, 3, 2, 4).reshape(N, 21, 3, -1)
        # shape: rest joints and tips move linearly, the landmark offsets scale with the length
        d_offsets = self.joint_dirs - self.joint_dirs[[max(p, 0) for p in self.parents]]    # (16, 3, S)
        d_offsets[0] = 0.0
        d_world = (parent_G @ d_offsets).reshape(N, n, -1)                             # (N, 16, 3 S): G_p(i) d o_i
        d_joints = self.joint_dirs[0] + (self.path @ d_world).reshape(N, n, 3, -1)
        d_tips = (np.einsum("tj,ntjcs->ntcs", self.tip_weights, G[:, None] @ (self.tip_dirs[:, None] - self.joint_dirs[None]))
                  + np.einsum("tj,njcs->ntcs", self.tip_weights, d_joints))
        d_length = np.einsum("nc,cs->ns", (rest[:, 4] - rest[:, 0]) / length[:, None],
                             self.joint_dirs[4] - self.joint_dirs[0])
        d_scale = weight[:, None] * d_length / self.template_length                    # (N, S)
        d_betas = (np.concatenate([d_joints, d_tips], axis=1)[:, self.order]
                   + turned.sum(2)[..., None] * d_scale[:, None, None] - self.joint_dirs[0])
        return points, d_pose, d_betas

    def rest_wrist(self, betas: np.ndarray) -> np.ndarray:
        """(N, S) betas -> (N, 3) the rest wrist (root joint): a posed wrist keypoint minus it is the
        hand layer's ``transl``, since the root pivots on its rest position."""
        return self.joint_template[0] + np.asarray(betas, np.float64) @ self.joint_dirs[0].T

    def _chain(self, R: np.ndarray, rest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 16, 3, 3) relative rotations, (N, 16, 3) rest joints -> world rotations and posed
        joints (the root pivots on its rest position), one tree level at a time."""
        G, joints = np.empty_like(R), np.empty_like(rest)
        G[:, 0], joints[:, 0] = R[:, 0], rest[:, 0]
        for children, parents in self.levels:
            G[:, children] = G[:, parents] @ R[:, children]
            offset = rest[:, children] - rest[:, parents]
            joints[:, children] = joints[:, parents] + np.einsum("nkcd,nkd->nkc", G[:, parents], offset)
        return G, joints


def _levels(parents: list[int]) -> list[tuple[list[int], list[int]]]:
    """[(children, their parents)] per level of the joint tree below the root, root side first."""
    depth = {0: 0}
    for j in range(1, len(parents)):
        depth[j] = depth[parents[j]] + 1
    return [([j for j in range(1, len(parents)) if depth[j] == d], [parents[j] for j in range(1, len(parents)) if depth[j] == d])
            for d in range(1, max(depth.values()) + 1)]
