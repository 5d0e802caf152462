"""What one training/evaluation sample is: the contract between datasets, transforms, losses and metrics.

Every dataset (synthetic renders, FreiHAND, RHD) yields a ``dict`` with these keys, at the
dataset's own image size, before any augmentation ("raw sample"):

  image         uint8   (3, H, W)   RGB
  mask          uint8   (H, W)      1 = hand, 0 = not; all zeros with has_mask = False
  keypoints_2d  float32 (21, 2)     pixels (x right, y down), FreiHAND/OpenPose order
  joints_3d     float32 (21, 3)     metres, camera space (OpenCV axes: x right, y down, z forward)
  vertices      float32 (V, 3)      metres, camera space; zeros (V of the open hand) when has_mesh = False
  pose          float32 (16, 3)     axis-angle of the open hand model (camera-space global orientation)
  betas         float32 (10,)       open hand shape
  K             float32 (3, 3)      intrinsics, pixels
  is_left       bool    ()          a left hand (its mesh/pose are the mirrored model's)
  has_mask, has_3d, has_mesh  bool () which targets are real (FreiHAND has no open-hand pose)

The training transform (``training.augment``) turns a raw sample into a "crop sample" for the
network: a square crop of ``size`` pixels around the hand, **always a right hand** (left hands
are flipped horizontally, with 3D x negated and the pose mirrored), with:

  image         float32 (3, S, S)   normalised as the network declares (NetworkConfig.input_normalization:
                                    IMAGE_MEAN / IMAGE_STD for the ResNets, [0, 1] for the landmark trunk)
  mask          float32 (S, S)
  keypoints_2d  float32 (21, 2)     crop coordinates normalised to [-1, 1] (-1 = left/top edge)
  joints_3d     float32 (21, 3)     metres, root-relative (wrist at 0), camera orientation after
                                    the in-plane rotation of the crop
  vertices      float32 (V, 3)      metres, root-relative like joints_3d
  pose, betas, is_left, has_mask, has_3d, has_mesh   as above (pose rotated/mirrored to match)

Weak-perspective camera (s, tx, ty): ``keypoints_2d ~= s * joints_3d[:, :2] + (tx, ty)``.
"""

from __future__ import annotations

from core.crops import IMAGE_MEAN, IMAGE_STD  # noqa: F401 (part of this contract)

NUM_KEYPOINTS = 21
ROOT = 0  # the wrist keypoint

RAW_KEYS = ("image", "mask", "keypoints_2d", "joints_3d", "vertices", "pose", "betas", "K", "is_left",
            "has_mask", "has_3d", "has_mesh")
