"""The torch hand layer: batched linear blend skinning with shape blend shapes and pose correctives.

One forward pass, in the spirit of smplx's ``body_models.py``:
betas -> rest mesh -> rest joints -> (pose correctives) -> kinematic chain -> skinning -> + transl.
It serves inference, training and the synthetic renderer, for the open hand and for MANO.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np
import torch
from torch import nn

from .model import KEYPOINT_ORDER, NUM_JOINTS, HandModel
from .rotations import to_matrix


@dataclasses.dataclass
class HandOutput:
    """What the layer returns; every tensor is batched over B hands, in metres."""

    vertices: torch.Tensor       # (B, V, 3) posed mesh, + transl
    joints: torch.Tensor         # (B, 16, 3) posed joints in MANO order, + transl
    keypoints: torch.Tensor      # (B, 21, 3) joints and fingertips in FreiHAND order, + transl
    rest_vertices: torch.Tensor  # (B, V, 3) zero-pose mesh of this shape (None with keypoints_only)
    rest_joints: torch.Tensor    # (B, 16, 3) zero-pose joints of this shape
    rotations: torch.Tensor      # (B, 16, 3, 3) relative joint rotations used
    world_rotations: torch.Tensor  # (B, 16, 3, 3) each joint's rotation in the model frame (chain applied)


class HandLayer(nn.Module):
    """Differentiable hand model: ``forward(betas, pose, transl) -> HandOutput``.

    Buffers follow the module's device and dtype (``layer.to('cuda', torch.float64)``).
    """

    def __init__(self, model: HandModel, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.model = model  # numpy data, kept for exporters (faces, UVs, names)
        self.side = model.side
        self.name = model.name

        def buffer(name: str, array: np.ndarray, dtype_=dtype):
            self.register_buffer(name, torch.as_tensor(np.ascontiguousarray(array), dtype=dtype_), persistent=False)

        buffer("v_template", model.v_template)                    # (V, 3)
        buffer("shapedirs", model.shapedirs)                      # (V, 3, S)
        buffer("joint_regressor", model.joint_regressor)          # (16, V)
        buffer("weights", model.weights)                          # (V, 16)
        buffer("faces", model.faces, torch.long)                  # (F, 3)
        buffer("tip_vertex_ids", model.tip_vertex_ids, torch.long)  # (5,)
        buffer("keypoint_order", KEYPOINT_ORDER, torch.long)      # (21,)
        self.parents = [int(p) for p in model.parents]
        self.has_correctives = model.posedirs is not None
        if self.has_correctives:
            buffer("posedirs", model.posedirs.reshape(model.posedirs.shape[0], -1))  # (135, V*3)
        if model.pose_components is not None:
            buffer("pose_components", model.pose_components)      # (C, 45)
            buffer("pose_mean", model.pose_mean.reshape(45))      # (45,)
        # keypoints_only works on the 16 joints and 5 tips alone: their rest positions are linear in
        # betas, so the joint regressor is applied to the template and shape directions once, here.
        regressor, tips = model.joint_regressor.astype(np.float64), model.tip_vertex_ids
        buffer("joint_template", regressor @ model.v_template)                                # (16, 3)
        buffer("joint_shapedirs", np.einsum("jv,vcs->jcs", regressor, model.shapedirs))     # (16, 3, S)
        buffer("tip_template", model.v_template[tips])                                       # (5, 3)
        buffer("tip_shapedirs", model.shapedirs[tips])                                       # (5, 3, S)
        buffer("tip_weights", model.weights[tips])                                           # (5, 16)
        if self.has_correctives:
            posedirs = model.posedirs.reshape(model.posedirs.shape[0], -1, 3)
            buffer("tip_posedirs", posedirs[:, tips].reshape(posedirs.shape[0], -1))         # (135, 15)
        self._levels = _chain_levels(self.parents)
        self.to(dtype)

    @property
    def num_betas(self) -> int:
        return self.shapedirs.shape[-1]

    def forward(self, betas: Optional[torch.Tensor] = None, pose: Optional[torch.Tensor] = None,
                transl: Optional[torch.Tensor] = None, pose_format: str = "axis_angle",
                keypoints_only: bool = False) -> HandOutput:
        """Pose a batch of hands.

        betas:  (B, S) shape coefficients (None: mean shape); fewer than S columns are zero-padded.
        pose:   (B, 16, 3) axis-angle radians, (B, 16, 3, 3) matrices or (B, 16, 6) 6D, per
                ``pose_format``; joint 0 is the global orientation about the wrist (None: zero pose).
        transl: (B, 3) metres added to everything (None: zero).
        keypoints_only: shape and skin only the 16 joints and 5 fingertip vertices (``vertices`` and
                ``rest_vertices`` are then None): the same keypoints and joints several times
                faster, for fitting.
        """
        given = [t for t in (betas, pose, transl) if t is not None]
        batch = given[0].shape[0] if given else 1
        dtype, device = self.v_template.dtype, self.v_template.device
        if betas is None:
            betas = torch.zeros(batch, self.num_betas, dtype=dtype, device=device)
        if betas.shape[-1] < self.num_betas:
            betas = torch.nn.functional.pad(betas, (0, self.num_betas - betas.shape[-1]))
        if pose is None:
            rotations = torch.eye(3, dtype=dtype, device=device).expand(batch, NUM_JOINTS, 3, 3)
        else:
            rotations = to_matrix(pose, pose_format).to(dtype)           # (B, 16, 3, 3)

        # Shape: rest mesh (or only the tips) and rest joints of each hand.
        betas = betas.to(dtype)
        if keypoints_only:
            rest_vertices = None
            rest_joints = self.joint_template + torch.einsum("jcs,bs->bjc", self.joint_shapedirs, betas)   # (B, 16, 3)
            rest = self.tip_template + torch.einsum("vcs,bs->bvc", self.tip_shapedirs, betas)             # (B, 5, 3)
        else:
            rest_vertices = self.v_template + torch.einsum("vcs,bs->bvc", self.shapedirs, betas)  # (B, V, 3)
            rest_joints = torch.einsum("jv,bvc->bjc", self.joint_regressor, rest_vertices)        # (B, 16, 3)
            rest = rest_vertices

        # Pose correctives (MANO's posedirs): linear in the entries of (R_j - I), j >= 1.
        if self.has_correctives:
            eye = torch.eye(3, dtype=dtype, device=device)
            features = (rotations[:, 1:] - eye).reshape(batch, -1)                       # (B, 135)
            posedirs = self.tip_posedirs if keypoints_only else self.posedirs
            rest = rest + (features @ posedirs).reshape(rest.shape)

        # Kinematic chain: world transform of each joint, G_j = G_parent @ [R_j | J_j - J_parent],
        # one batched step per level of the tree (all joints of a level at once).
        world_rot, joints = self._chain(rotations, rest_joints)                         # (B, 16, 3, 3), (B, 16, 3)

        # Skinning: each joint moves its rest-space points by x -> R_w (x - J_rest) + J_posed.
        skin_trans = joints - (world_rot @ rest_joints.unsqueeze(-1)).squeeze(-1)       # (B, 16, 3)
        weights = self.tip_weights if keypoints_only else self.weights                   # (V', 16)
        vert_rot = torch.einsum("vj,bjcd->bvcd", weights, world_rot)                     # (B, V', 3, 3)
        vert_trans = torch.einsum("vj,bjc->bvc", weights, skin_trans)                    # (B, V', 3)
        vertices = (vert_rot @ rest.unsqueeze(-1)).squeeze(-1) + vert_trans              # (B, V', 3)

        if transl is not None:
            vertices = vertices + transl.to(dtype).unsqueeze(1)
            joints = joints + transl.to(dtype).unsqueeze(1)
        tips = vertices if keypoints_only else vertices[:, self.tip_vertex_ids]           # (B, 5, 3)
        if keypoints_only:
            vertices = None
        keypoints = torch.cat([joints, tips], dim=1)[:, self.keypoint_order]             # (B, 21, 3)
        return HandOutput(vertices, joints, keypoints, rest_vertices, rest_joints, rotations, world_rot)

    def _chain(self, rotations: torch.Tensor, rest_joints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 16, 3, 3) relative rotations, (B, 16, 3) rest joints -> world rotations (B, 16, 3, 3)
        and posed joints (B, 16, 3), computed level by level from the root."""
        world_rot, world_pos = rotations[:, :1], rest_joints[:, :1]          # in the order of ``self._levels``
        for children, parents, slots in self._levels:
            parent_rot = world_rot[:, slots]                                   # (B, k, 3, 3)
            offset = rest_joints[:, children] - rest_joints[:, parents]        # (B, k, 3)
            world_pos = torch.cat([world_pos, world_pos[:, slots] + (parent_rot @ offset.unsqueeze(-1)).squeeze(-1)], 1)
            world_rot = torch.cat([world_rot, parent_rot @ rotations[:, children]], 1)
        order = self._levels.inverse
        return world_rot[:, order], world_pos[:, order]

    def pose_from_pca(self, global_orient: torch.Tensor, coeffs: torch.Tensor, add_mean: bool = True) -> torch.Tensor:
        """MANO-style PCA pose: (B, 3) global orientation + (B, C') coefficients -> (B, 16, 3) axis-angle."""
        if not hasattr(self, "pose_components"):
            raise ValueError(f"hand model {self.name!r} has no PCA pose space")
        fingers = coeffs @ self.pose_components[: coeffs.shape[-1]]                     # (B, 45)
        if add_mean:
            fingers = fingers + self.pose_mean
        return torch.cat([global_orient.unsqueeze(1), fingers.reshape(-1, 15, 3)], dim=1)



class _Levels(list):
    """[(children, parents, slots)] per level of a joint tree below the root; ``slots`` are the
    parents' positions in the order the levels are computed in (root first); ``inverse`` maps
    that order back to joint order."""

    inverse: list


def _chain_levels(parents: list[int]) -> _Levels:
    levels, done, depth = _Levels(), [0], {0: 0}
    for j in range(1, len(parents)):
        depth[j] = depth[parents[j]] + 1
    for level in range(1, max(depth.values()) + 1):
        children = [j for j in range(1, len(parents)) if depth[j] == level]
        levels.append((children, [parents[j] for j in children], [done.index(parents[j]) for j in children]))
        done += children
    levels.inverse = [done.index(j) for j in range(len(parents))]
    return levels
