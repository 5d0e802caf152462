"""MediaPipe's hand-landmark network (``hand_landmark_{full,lite}.tflite``) as a torch module.

Contract (the pipeline relies on it; do not change):

* ``HandLandmarkNet.forward(image, features=False)``: ``image`` (B, 3, 224, 224) float32 RGB with
  values in ``HandLandmarkNet.INPUT_RANGE`` = (0.0, 1.0) (MediaPipe's ``hand_landmark_cpu`` graph
  converts the rotated crop with ``output_tensor_float_range {min: 0 max: 1}``).
* returns a :class:`LandmarkOutput` (a NamedTuple), exactly the TFLite outputs reshaped:
  ``landmarks`` (B, 21, 3) in crop pixels (x, y right/down in the 224 px crop; z relative depth on
  the same pixel scale, MediaPipe divides it by 224 and by ``normalize_z`` 0.4 later);
  ``presence`` (B,) a probability (the graph ends in a sigmoid; MediaPipe keeps a hand above 0.5);
  ``handedness`` (B,) a probability (sigmoid inside the graph) of the first label, "Left", of
  MediaPipe's ``handedness.txt`` (its binary classification scores label 0); MediaPipe's labels
  assume a mirrored (selfie) image, so for an unmirrored photo a value above 0.5 means the
  person's RIGHT hand (checked against MediaPipe's own sides on every real photo);
  ``world`` (B, 21, 3) metres, origin near the hand's centre, axes of the crop (not rotated back).
* ``features=True`` returns ``(LandmarkOutput, features)`` where ``features`` is a dict of NCHW
  maps named ``"s{stride}_c{channels}"``: the output of each resolution of the trunk
  (strides 2, 4, 8, 16, 32) plus ``"head_c{channels}"``, the 7x7 map that is averaged into the
  embedding (a pretrained trunk for HAMR). "full": s2_c16 (112 px), s4_c24 (56), s8_c40 (28),
  s16_c112 (14), s32_c192 (7), head_c1152 (7); "lite": s2_c16, s4_c16, s8_c24, s16_c64,
  s32_c112, head_c672. The maps are channels-last in memory.

Architecture (read from the .tflite graph by ``core.perception.convert``): a MobileNetV2-style
trunk of :class:`InvertedResidual` blocks with ReLU6, a 1x1 + depthwise 3x3 head, a global mean
and four linear outputs.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .layers import SameConv2d, depthwise, pointwise

NUM_LANDMARKS = 21

# (expanded channels, out channels, depthwise kernel, stride, shortcut) after the 16-channel first
# block; shortcut: "" none, "id" identity, "pool" 2x2 max-pool of the input (same channels, stride 2)
BLOCKS = {
    "full": [(64, 24, 3, 2, ""), (144, 24, 3, 1, "id"),
             (144, 40, 5, 2, ""), (240, 40, 5, 1, "id"),
             (240, 80, 3, 2, ""), (480, 80, 3, 1, "id"), (480, 80, 3, 1, "id"),
             (480, 112, 5, 1, ""), (672, 112, 5, 1, "id"), (672, 112, 5, 1, "id"),
             (672, 192, 5, 2, ""), (1152, 192, 5, 1, "id"), (1152, 192, 5, 1, "id"), (1152, 192, 5, 1, "id")],
    "lite": [(64, 16, 3, 2, "pool"), (96, 16, 3, 1, "id"),
             (96, 24, 5, 2, ""), (144, 24, 5, 1, "id"),
             (144, 48, 3, 2, ""), (288, 48, 3, 1, "id"), (288, 48, 3, 1, "id"),
             (288, 64, 5, 1, ""), (384, 64, 5, 1, "id"), (384, 64, 5, 1, "id"),
             (384, 112, 5, 2, ""), (672, 112, 5, 1, "id"), (672, 112, 5, 1, "id"), (672, 112, 5, 1, "id")],
}
HEAD_CHANNELS = {"full": 1152, "lite": 672}


class LandmarkOutput(NamedTuple):
    landmarks: torch.Tensor    # (B, 21, 3) crop pixels (224 px frame); z on the same scale
    presence: torch.Tensor     # (B,) probability that a hand is in the crop
    handedness: torch.Tensor   # (B,) probability of MediaPipe's "Left" = the person's right hand in an unmirrored photo
    world: torch.Tensor        # (B, 21, 3) metres


class InvertedResidual(nn.Module):
    """MobileNetV2 block: ``[expand 1x1 + ReLU6] -> depthwise kxk + ReLU6 -> project 1x1`` (linear),
    plus the shortcut. ``expanded=None`` skips the expansion (the first block).
    (B, C_in, H, W) -> (B, C_out, H / stride, W / stride)."""

    def __init__(self, in_channels: int, expanded: Optional[int], out_channels: int, kernel: int,
                 stride: int, shortcut: str = ""):
        super().__init__()
        hidden = expanded or in_channels
        self.expand = pointwise(in_channels, hidden) if expanded else None
        self.dw = depthwise(hidden, kernel, stride)
        self.project = pointwise(hidden, out_channels)
        self.shortcut = shortcut
        if shortcut and (in_channels != out_channels or (shortcut == "id") != (stride == 1)):
            raise ValueError(f"shortcut {shortcut!r} does not fit {in_channels}->{out_channels}, stride {stride}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self.expand(x), inplace=True) if self.expand is not None else x
        y = self.project(F.relu6(self.dw(y), inplace=True))
        if self.shortcut == "id":
            y = y + x
        elif self.shortcut == "pool":
            y = y + F.max_pool2d(x, 2)
        return y

    def tflite_layers(self) -> list[nn.Module]:
        return ([self.expand] if self.expand is not None else []) + [self.dw, self.project]


class HandLandmarkNet(nn.Module):
    """(B, 3, 224, 224) RGB in [0, 1] -> :class:`LandmarkOutput` (+ feature maps on request)."""

    INPUT_SIZE = 224
    INPUT_RANGE = (0.0, 1.0)
    CPU_CHUNK = 8              # crops per slice on the CPU (see forward)

    def __init__(self, variant: str = "full"):
        super().__init__()
        if variant not in BLOCKS:
            raise ValueError(f"hand landmark variant must be one of {sorted(BLOCKS)}, not {variant!r}")
        self.variant = variant
        self.stem = SameConv2d(3, 24, 3, 2)                              # 224 -> 112 px
        blocks, channels = [InvertedResidual(24, None, 16, 3, 1)], 16
        for expanded, out, kernel, stride, shortcut in BLOCKS[variant]:
            blocks.append(InvertedResidual(channels, expanded, out, kernel, stride, shortcut))
            channels = out
        self.blocks = nn.ModuleList(blocks)
        head = HEAD_CHANNELS[variant]
        self.head_expand = pointwise(channels, head)
        self.head_dw = depthwise(head, 3)
        self.handedness = nn.Linear(head, 1)
        self.presence = nn.Linear(head, 1)
        self.landmarks = nn.Linear(head, NUM_LANDMARKS * 3)
        self.world = nn.Linear(head, NUM_LANDMARKS * 3)

    def forward(self, image: torch.Tensor, features: bool = False):
        """image (B, 3, 224, 224) RGB in [0, 1] -> LandmarkOutput (and the feature maps if
        ``features``). On the CPU a large batch runs in slices of ``CPU_CHUNK`` crops (the
        activations of a slice stay in cache: 2.2x the crops/s of one batch of 256 measured)."""
        if image.ndim != 4 or image.shape[1:] != (3, self.INPUT_SIZE, self.INPUT_SIZE):
            raise ValueError(f"HandLandmarkNet expects (B, 3, 224, 224) RGB, got {tuple(image.shape)}")
        if image.device.type != "cpu" or image.shape[0] <= self.CPU_CHUNK:
            return self._forward(image, features)
        parts = [self._forward(part, features) for part in image.split(self.CPU_CHUNK)]
        if not features:
            return LandmarkOutput(*(torch.cat(field) for field in zip(*parts)))
        out = LandmarkOutput(*(torch.cat(field) for field in zip(*(p[0] for p in parts))))
        return out, {name: torch.cat([p[1][name] for p in parts]) for name in parts[0][1]}

    def _forward(self, image: torch.Tensor, features: bool):
        maps = {}
        x = F.relu6(self.stem(image.contiguous(memory_format=torch.channels_last)), inplace=True)
        for i, block in enumerate(self.blocks):
            x = block(x)
            last_at_this_size = i + 1 == len(self.blocks) or self.blocks[i + 1].dw.stride[0] > 1
            if features and last_at_this_size:
                maps[f"s{self.INPUT_SIZE // x.shape[-1]}_c{x.shape[1]}"] = x
        x = F.relu6(self.head_dw(F.relu6(self.head_expand(x), inplace=True)), inplace=True)   # (B, head, 7, 7)
        if features:
            maps[f"head_c{x.shape[1]}"] = x
        embedding = x.mean((2, 3))                                       # (B, head)
        batch = image.shape[0]
        out = LandmarkOutput(
            landmarks=self.landmarks(embedding).view(batch, NUM_LANDMARKS, 3),
            presence=torch.sigmoid(self.presence(embedding)).view(batch),
            handedness=torch.sigmoid(self.handedness(embedding)).view(batch),
            world=self.world(embedding).view(batch, NUM_LANDMARKS, 3))
        return (out, maps) if features else out

    def tflite_layers(self) -> list[nn.Module]:
        """Convolutions in the order the TFLite graph runs them (the converter maps CONV_2D /
        DEPTHWISE_CONV_2D operators onto this list one by one; the four FULLY_CONNECTED outputs
        are mapped by the graph's output names, see ``tflite_outputs``)."""
        return [self.stem] + [m for block in self.blocks for m in block.tflite_layers()] + \
            [self.head_expand, self.head_dw]

    def tflite_outputs(self) -> dict[str, nn.Linear]:
        """Graph output name -> the linear layer that produces it (before the graph's sigmoid)."""
        return {"Identity": self.landmarks, "Identity_1": self.presence,
                "Identity_2": self.handedness, "Identity_3": self.world}
