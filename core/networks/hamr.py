"""HAMR (Zhang et al., ICCV 2019): 2D heatmaps from a cascaded encoder-decoder, then an iterative
regressor (HMR-style error feedback) for hand pose, shape and a weak-perspective camera.

    images (B, 3, S, S) -> ResNet trunk -> stage 1: the trunk as encoder + FPN decoder to stride 4
    -> heatmaps 1 -> stage 2: a U-Net (stride 4 -> 16 -> 4) on stage-1 features + heatmaps
    -> heatmaps 2 -> [pooled stride-32 features, flattened encoding of stage-2 features + heatmaps]
    -> MLP with error feedback: params += MLP([features, params]), num_iterations times
    -> right-hand layer -> vertices, 21 keypoints (root-relative metres) -> weak-perspective 2D.

With ``backbone="mediapipe_hand"`` the trunk is MediaPipe's frozen hand-landmark network and HAMR's
2D stage is the trunk's own 21 landmarks (core.networks.landmark_trunk):
    upright crops (B, 3, 224, 224) in [0, 1] -> landmark trunk -> [embedding, 2D landmarks, world
    landmarks] -> the same iterative regressor and hand layer (``heatmaps`` is then empty).
``forward`` then also takes the trunk's cached outputs (a dict) instead of crops.

For speed on a GPU: ``model.to(memory_format=torch.channels_last)``, channels-last inputs and
``torch.autocast("cuda", torch.bfloat16)``; the hand layer and projection always run in float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from core.hand_model import HandLayer, load_hand_model
from core.hand_model.rotations import rot6d_to_matrix

from . import camera as cam
from .backbone import make_trunk
from .config import NetworkConfig
from .landmark_trunk import trunk_outputs

NUM_KEYPOINTS = 21
NUM_JOINTS = 16
DECODER_CHANNELS = 64    # width of the stride-4 heatmap features
ENCODER_CHANNELS = 64    # channels per cell of the flattened stride-32 encoding of features + heatmaps
HIDDEN = 1024            # regressor MLP width (as HMR)


def conv_bn_relu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def upsample2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


class FPNDecoder(nn.Module):
    """Stage 1's decoder: trunk features [f1..f4] -> (B, D, S/4, S/4) by top-down addition."""

    def __init__(self, in_channels: tuple, channels: int):
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.smooth = conv_bn_relu(channels, channels)

    def forward(self, features: list) -> torch.Tensor:
        x = self.lateral[3](features[3])
        for level in (2, 1, 0):
            x = self.lateral[level](features[level]) + upsample2(x)
        return self.smooth(x)


class UNetStage(nn.Module):
    """Stage 2 (hourglass-lite): x = features + remap(heatmaps), stride 4 -> 8 -> 16 -> 8 -> 4 with skips."""

    def __init__(self, channels: int):
        super().__init__()
        self.remap_features = nn.Conv2d(channels, channels, 1)
        self.remap_heatmaps = nn.Conv2d(NUM_KEYPOINTS, channels, 1)
        self.down1, self.down2 = conv_bn_relu(channels, channels, 2), conv_bn_relu(channels, channels, 2)
        self.up1, self.up0 = conv_bn_relu(channels, channels), conv_bn_relu(channels, channels)

    def forward(self, features: torch.Tensor, heatmaps: torch.Tensor) -> torch.Tensor:
        x = features + self.remap_features(features) + self.remap_heatmaps(heatmaps)
        d1 = self.down1(x)
        d2 = self.down2(d1)
        u1 = self.up1(d1 + upsample2(d2))
        return self.up0(x + upsample2(u1))


class IterativeRegressor(nn.Module):
    """HMR's regressor: ``params_{t+1} = params_t + MLP([features, params_t])``.

    Params: pose (B, 16, 6) 6D rotations, betas (B, num_betas), camera (B, 3) = (s, tx, ty);
    their initial values are the buffers ``init_pose_6d``, ``init_betas``, ``init_camera``.
    """

    def __init__(self, in_features: int, num_betas: int, num_iterations: int,
                 init_pose_6d: torch.Tensor, init_camera: torch.Tensor):
        super().__init__()
        self.num_betas, self.num_iterations = num_betas, num_iterations
        self.register_buffer("init_pose_6d", init_pose_6d.reshape(NUM_JOINTS * 6).clone())
        self.register_buffer("init_betas", torch.zeros(num_betas))
        self.register_buffer("init_camera", init_camera.clone())
        num_params = NUM_JOINTS * 6 + num_betas + 3
        self.mlp = nn.Sequential(nn.Linear(in_features + num_params, HIDDEN), nn.ReLU(inplace=True), nn.Dropout(0.5),
                                 nn.Linear(HIDDEN, HIDDEN), nn.ReLU(inplace=True), nn.Dropout(0.5))
        self.dec_pose = nn.Linear(HIDDEN, NUM_JOINTS * 6)
        self.dec_betas = nn.Linear(HIDDEN, num_betas)
        self.dec_camera = nn.Linear(HIDDEN, 3)
        for layer in (self.dec_pose, self.dec_betas, self.dec_camera):  # start near the initial params
            nn.init.xavier_uniform_(layer.weight, gain=0.01)
            nn.init.zeros_(layer.bias)

    def forward(self, features: torch.Tensor) -> list[dict]:
        """(B, F) -> one dict per iteration: pose_6d (B, 16, 6), betas (B, num_betas), camera (B, 3)."""
        B = features.shape[0]
        pose = self.init_pose_6d.expand(B, -1)
        betas = self.init_betas.expand(B, -1)
        camera = self.init_camera.expand(B, -1)
        iterations = []
        for _ in range(self.num_iterations):
            hidden = self.mlp(torch.cat([features, pose, betas, camera], dim=1))
            pose = pose + self.dec_pose(hidden)
            betas = betas + self.dec_betas(hidden)
            camera = camera + self.dec_camera(hidden)
            iterations.append({"pose_6d": pose.reshape(B, NUM_JOINTS, 6), "betas": betas, "camera": camera})
        return iterations


class HAMR(nn.Module):
    """``forward(images (B, 3, S, S) normalised per config.input_normalization) -> dict``
(or, with the landmark trunk, ``forward(trunk outputs dict)``):

    heatmaps      list per stage of (B, 21, H, H), H = config.heatmap_size (empty without heatmaps)
    pose_6d       (B, 16, 6)     final pose, 6D per joint (joint 0 = global orientation, camera axes)
    rotmats       (B, 16, 3, 3)  the same as matrices
    betas         (B, num_betas)
    camera        (B, 3)         weak perspective (s, tx, ty), see core.networks.camera
    joints_3d     (B, 21, 3)     keypoints, metres, root-relative (wrist = 0), camera axes
    vertices      (B, V, 3)      mesh, metres, relative to the same wrist keypoint
    keypoints_2d  (B, 21, 2)     projected keypoints, normalised crop coordinates
    landmarks_2d  (B, 21, 2)     (landmark trunk only) the trunk's 2D landmarks, normalised crop coordinates
    presence      (B,)           (landmark trunk only) the trunk's hand presence probability
    iterations    list per iteration of {pose_6d, betas, camera} (the last one = the final params);
                  in training mode each also holds its decoded rotmats, joints_3d, keypoints_2d
                  (and the last one vertices), for the losses that supervise every iteration;
                  ``training_vertices = False`` skips the mesh in training mode (vertices None; the
                  keypoints alone cost several times less, for losses without the silhouette)

    Always a right hand: the caller flips left hands first (training/sample.py).
    """

    def __init__(self, config: NetworkConfig):
        super().__init__()
        self.config = config
        self.training_vertices = True
        self.hand_layer = HandLayer(load_hand_model(config.hand_model, "right"))  # buffers not persistent
        if config.num_betas > self.hand_layer.num_betas:
            raise ValueError(f"num_betas={config.num_betas} but hand model {config.hand_model!r} "
                             f"has {self.hand_layer.num_betas}")
        self.trunk, evidence, features = make_trunk(config)
        if evidence is not None:
            self.evidence = evidence
        if config.use_heatmaps and not config.pretrained_trunk:
            self.decoder = FPNDecoder(self.trunk.channels, DECODER_CHANNELS)
            self.head1 = nn.Conv2d(DECODER_CHANNELS, NUM_KEYPOINTS, 1)
            self.stage2 = UNetStage(DECODER_CHANNELS)
            self.head2 = nn.Conv2d(DECODER_CHANNELS, NUM_KEYPOINTS, 1)
            self.encoder = nn.Sequential(conv_bn_relu(DECODER_CHANNELS + NUM_KEYPOINTS, 128, 2),
                                         conv_bn_relu(128, 128, 2), conv_bn_relu(128, ENCODER_CHANNELS, 2))
            features += ENCODER_CHANNELS * (config.input_size // 32) ** 2
        init_pose, init_camera = self._initial_params()
        self.regressor = IterativeRegressor(features, config.num_betas, config.num_iterations, init_pose, init_camera)

    @torch.no_grad()
    def _initial_params(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean hand, fingers straight, palm to the camera, fingers up (canonical x, y, z -> x, -y, -z),
        framed by the camera so its keypoints fill HAND_FILL of the crop."""
        pose = torch.eye(3).repeat(NUM_JOINTS, 1, 1)
        pose[0] = torch.diag(torch.tensor([1.0, -1.0, -1.0]))
        keypoints = self.hand_layer(pose=pose[None], pose_format="matrix").keypoints[0]
        pose_6d = torch.cat([pose[..., :, 0], pose[..., :, 1]], dim=-1)
        return pose_6d, cam.framing_camera(keypoints - keypoints[:1])

    def decode(self, pose_6d: torch.Tensor, betas: torch.Tensor, camera: torch.Tensor, vertices: bool = True) -> dict:
        """Params of one iteration -> rotmats, joints_3d, vertices (None unless ``vertices``), keypoints_2d
        (float32, see class doc)."""
        with torch.autocast(pose_6d.device.type, enabled=False):
            rotmats = rot6d_to_matrix(pose_6d.float())
            out = self.hand_layer(betas.float(), rotmats, pose_format="matrix", keypoints_only=not vertices)
            root = out.keypoints[:, :1]
            joints = out.keypoints - root
            return {"rotmats": rotmats, "joints_3d": joints, "vertices": out.vertices - root if vertices else None,
                    "keypoints_2d": cam.project(joints, camera.float())}

    def forward(self, images) -> dict:
        if self.config.pretrained_trunk:
            trunk = trunk_outputs(self.trunk, images)
            extra = {"landmarks_2d": trunk["landmarks"][..., :2].float(), "presence": trunk["presence"].float()}
            return self._regress(self.evidence(trunk), [], extra)
        f = self.trunk(images)
        pooled = f[3].mean(dim=(2, 3))
        heatmaps = []
        if self.config.use_heatmaps:
            x1 = self.decoder(f)
            h1 = self.head1(x1)
            x2 = self.stage2(x1, h1)
            h2 = self.head2(x2)
            encoded = self.encoder(torch.cat([x2, h2], dim=1)).flatten(1)
            pooled = torch.cat([pooled, encoded], dim=1)
            size = self.config.heatmap_size
            heatmaps = [h if h.shape[-1] == size else F.interpolate(h, size=(size, size), mode="bilinear",
                                                                   align_corners=False) for h in (h1, h2)]
        return self._regress(pooled, heatmaps)

    def _regress(self, pooled: torch.Tensor, heatmaps: list, extra: dict = None) -> dict:
        """(B, F) features -> the output dict (see the class doc)."""
        iterations = self.regressor(pooled)
        if self.training:
            last = len(iterations) - 1
            iterations = [{**params, **self.decode(**params, vertices=self.training_vertices and i == last)}
                          for i, params in enumerate(iterations)]
            final = iterations[-1]
        else:
            final = {**iterations[-1], **self.decode(**iterations[-1])}
        return {"heatmaps": heatmaps, **final, **(extra or {}), "iterations": iterations}
