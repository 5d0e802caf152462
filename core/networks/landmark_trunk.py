"""MediaPipe's hand-landmark network (core.perception) as a frozen, pretrained trunk for the hand
networks, and the head's view of what it sees.

    crop (B, 3, 224, 224) RGB in [0, 1] -> LandmarkTrunk -> trunk outputs (a dict, cacheable):
        embedding   (B, 1152)    the landmark network's pooled features (its 7x7 head map, averaged)
        landmarks   (B, 21, 3)   its image landmarks: x, y normalised crop coordinates in [-1, 1]
                                 (core.crops; -1 = left/top edge), z relative depth on the same scale
        world       (B, 21, 3)   its world landmarks, metres, the crop's axes
        presence    (B,)         probability that a hand is in the crop
        handedness  (B,)         probability of MediaPipe's "Right" (mirrored-image convention)
    -> LandmarkEvidence -> features (B, F) for the regressor: the embedding and HAMR's 2D stage, here
       the trunk's own 21 image landmarks (as coordinates: a conv encoding of heatmaps rendered at
       them cost three times as much to train on the CPU and carries no more) and world landmarks.

The trunk's weights ship with core.perception (Apache-2.0, see core/perception/weights/NOTICE), not
in the network's weights file; it never trains (no gradients, always eval mode), so its outputs for
a training set can be computed once (``python -m training.cache_features``) and a network's
``forward`` takes either crops or such a dict. The engine's hand tracker runs the same model on the
same crop of a tracked right hand: ``outputs_from_pass`` turns that pass into trunk outputs, so the
trunk does not run twice on one crop.
"""

from __future__ import annotations

import torch
from torch import nn

NUM_KEYPOINTS = 21
TRUNK_KEYS = ("embedding", "landmarks", "world", "presence", "handedness")
WORLD_UNIT = 0.1             # metres per unit of the world landmarks the head sees (decimetres: values ~1)


class LandmarkTrunk(nn.Module):
    """Frozen hand-landmark network: ``forward(images (B, 3, 224, 224) RGB in [0, 1]) -> trunk outputs``
    (see the module docstring)."""

    INPUT_SIZE = 224

    def __init__(self, variant: str = "full"):
        super().__init__()
        from core.perception import load_hand_landmarks
        self.net = load_hand_landmarks(variant)
        self.net.requires_grad_(False)
        self.embedding_size = self.net.landmarks.in_features

    def train(self, mode: bool = True) -> "LandmarkTrunk":
        return super().train(False)                        # frozen: always in eval mode

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> dict:
        out, maps = self.net(images, features=True)
        head = next(v for k, v in maps.items() if k.startswith("head_"))      # (B, 1152, 7, 7)
        return trunk_dict(head.mean((2, 3)), out.landmarks, out.world, out.presence, out.handedness)

    def outputs_from_pass(self, seen) -> dict:
        """A pass of the same landmark model over one crop (core.perception.hand_landmarker.LandmarkPass)
        -> this trunk's outputs for that crop, batch of 1 (ValueError when another model made it)."""
        if seen.model != self.net.variant:
            raise ValueError(f"a pass of the {seen.model!r} landmark model; this trunk is {self.net.variant!r}")
        tensor = torch.as_tensor
        return trunk_dict(tensor(seen.embedding)[None], tensor(seen.landmarks)[None], tensor(seen.world)[None],
                          tensor([seen.presence], dtype=torch.float32), tensor([seen.handedness], dtype=torch.float32))


def trunk_dict(embedding: torch.Tensor, landmarks: torch.Tensor, world: torch.Tensor, presence: torch.Tensor,
               handedness: torch.Tensor) -> dict:
    """The landmark model's outputs (embedding (B, C), landmarks (B, 21, 3) crop pixels of the 224 px
    input, world (B, 21, 3), presence (B,), handedness (B,)) -> trunk outputs (the module docstring)."""
    landmarks = landmarks * (2.0 / LandmarkTrunk.INPUT_SIZE)
    landmarks = torch.cat([landmarks[..., :2] - 1.0, landmarks[..., 2:]], dim=-1)
    return {"embedding": embedding, "landmarks": landmarks, "world": world, "presence": presence,
            "handedness": handedness}


class LandmarkEvidence(nn.Module):
    """Trunk outputs -> features (B, num_features), no parameters:

    [embedding (1152), and with ``use_landmarks``: the 2D landmarks and their depth (63), the world
    landmarks in decimetres (63), presence and handedness (2)]. Without ``use_landmarks`` the head
    sees the embedding alone (the ablation of HAMR's 2D stage).
    """

    def __init__(self, embedding_size: int, use_landmarks: bool):
        super().__init__()
        self.use_landmarks = use_landmarks
        self.num_features = embedding_size + (NUM_KEYPOINTS * 6 + 2 if use_landmarks else 0)

    def forward(self, trunk: dict) -> torch.Tensor:
        embedding = trunk["embedding"].float()
        if not self.use_landmarks:
            return embedding
        batch = embedding.shape[0]
        scalars = torch.stack([trunk["presence"].float(), trunk["handedness"].float()], dim=1)
        return torch.cat([embedding, trunk["landmarks"].float().reshape(batch, -1),
                          trunk["world"].float().reshape(batch, -1) / WORLD_UNIT, scalars], dim=1)


def trunk_outputs(trunk: LandmarkTrunk, inputs) -> dict:
    """``inputs``: crops (B, 3, 224, 224) in [0, 1], or a dict of trunk outputs (cached) -> trunk outputs."""
    if isinstance(inputs, dict):
        missing = [k for k in TRUNK_KEYS if k not in inputs]
        if missing:
            raise ValueError(f"cached trunk outputs lack {missing}")
        return inputs
    return trunk(inputs)
