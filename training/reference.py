"""The floor a trained network must beat: one fixed hand, the mean of the training poses, whatever
the image shows.

Procrustes-aligned metrics (PA-MPJPE, F-scores) ignore the global rotation, position and scale, so
a network that learned only the average hand, and nothing about the fingers in front of it, scores
about what this reference scores. An untrained HAMR network outputs its initial hand (fingers
straight), which is a weaker floor; ``python -m training.evaluate --reference`` reports both.

The finger poses are drawn from the same ``PosePrior.sample`` the synthetic data uses; each joint's
mean rotation is the chordal mean (the average matrix projected back onto the rotations).
"""

from __future__ import annotations

import torch
from torch import nn

from core.hand_model import HandLayer, PosePrior, load_hand_model
from core.hand_model.rotations import axis_angle_to_matrix
from core.networks.camera import framing_camera, project

NAME = "mean hand (ignores the image)"


def mean_rotations(rotations: torch.Tensor) -> torch.Tensor:
    """(N, J, 3, 3) rotations -> (J, 3, 3) chordal means: the nearest rotation to each joint's mean matrix."""
    u, _, vh = torch.linalg.svd(rotations.mean(0))
    fix = torch.ones(rotations.shape[1], 3, dtype=rotations.dtype)
    fix[:, 2] = torch.det(u @ vh).sign()                      # a proper rotation, never a reflection
    return u @ torch.diag_embed(fix) @ vh


class MeanHand(nn.Module):
    """``forward(images (B, 3, S, S)) -> dict`` as a HAMR network's (joints_3d (B, 21, 3) and vertices
    (B, V, 3) root-relative metres, keypoints_2d (B, 21, 2) crop coordinates), the same for every image:
    the open hand model at the mean of ``count`` sampled finger poses, mean shape, palm to the camera."""

    def __init__(self, hand_model: str = "open", count: int = 2000, seed: int = 0):
        super().__init__()
        model = load_hand_model(hand_model, "right")
        layer = HandLayer(model)
        poses = PosePrior(model).sample(count, torch.Generator().manual_seed(seed))       # (N, 16, 3)
        rotations = mean_rotations(axis_angle_to_matrix(poses))                         # (16, 3, 3)
        rotations[0] = torch.diag(torch.tensor([1.0, -1.0, -1.0]))                     # palm to the camera
        with torch.no_grad():
            out = layer(pose=rotations[None], pose_format="matrix")
        root = out.keypoints[:, :1]
        joints, vertices = out.keypoints - root, out.vertices - root
        self.register_buffer("joints_3d", joints)                                        # (1, 21, 3)
        self.register_buffer("vertices", vertices)                                       # (1, V, 3)
        self.register_buffer("keypoints_2d", project(joints, framing_camera(joints[0])[None]))

    def forward(self, images: torch.Tensor) -> dict:
        batch = images.shape[0]
        return {"joints_3d": self.joints_3d.expand(batch, -1, -1), "vertices": self.vertices.expand(batch, -1, -1),
                "keypoints_2d": self.keypoints_2d.expand(batch, -1, -1), "heatmaps": []}
