"""MediaPipe's hand re-crop network (``holistic_landmark/hand_recrop.tflite``) as a torch module.

MediaPipe's holistic graph cuts a loose square around where the body-landmark network puts a hand
(wrist, index and pinky), and this small network says where the hand really is in it.

* ``HandRecropNet.forward(image)``: ``image`` (B, 3, 256, 256) float32 RGB with values in
  ``HandRecropNet.INPUT_RANGE`` = (0.0, 1.0) (``hand_recrop_by_roi`` converts the letterboxed crop with
  ``output_tensor_float_range {min: 0 max: 1}``).
* returns ``points`` (B, 2, 2): two points x, y in crop pixels (256 px frame): the hand's centre and a
  point whose distance from it is half the new region's side (the direction from the second to the
  first is the hand's "up"; see ``core.perception.people``).

Architecture (read from the .tflite graph by ``core.perception.convert``): a 3x3 stride-2 stem with
PReLU and a per-channel scale, six stride-2 blocks (PReLU, per-channel scale, 2x2 stride-2 convolution,
PReLU, per-channel scale, depthwise 3x3, 1x1; shortcut: 2x2 max-pool with channels zero-padded or cut
to the block's width), and a 2x2 convolution to the four outputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import SameConv2d, depthwise, pointwise

# (in, middle, out) channels of the six blocks: 128 -> 2 px
BLOCKS = [(8, 8, 16), (16, 16, 32), (32, 32, 64), (64, 32, 64), (64, 16, 32), (32, 8, 16)]


def channel_scale(channels: int) -> nn.Conv2d:
    """A per-channel scale and offset (TFLite's 1x1 depthwise convolution; a folded batch norm)."""
    return nn.Conv2d(channels, channels, 1, groups=channels)


class RecropBlock(nn.Module):
    """(B, C_in, H, W) -> (B, C_out, H / 2, W / 2): ``conv1x1(dw3x3(scale(PReLU(down2x2(scale(PReLU(x)))))))``
    plus the 2x2 max-pool of ``x`` with its channels zero-padded or cut to C_out."""

    def __init__(self, cin: int, middle: int, cout: int):
        super().__init__()
        self.act_in, self.scale_in = nn.PReLU(cin), channel_scale(cin)
        self.down = nn.Conv2d(cin, middle, 2, 2)
        self.act_mid, self.scale_mid = nn.PReLU(middle), channel_scale(middle)
        self.dw = depthwise(middle, 3)
        self.pw = pointwise(middle, cout)
        self.cout = cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.down(self.scale_in(self.act_in(x)))
        y = self.pw(self.dw(self.scale_mid(self.act_mid(y))))
        shortcut = F.max_pool2d(x, 2)
        extra = self.cout - shortcut.shape[1]
        shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, extra)) if extra > 0 else shortcut[:, :self.cout]
        return shortcut + y

    def tflite_layers(self) -> list[nn.Module]:
        return [self.act_in, self.scale_in, self.down, self.act_mid, self.scale_mid, self.dw, self.pw]


class HandRecropNet(nn.Module):
    """(B, 3, 256, 256) RGB in [0, 1] -> points (B, 2, 2) crop pixels."""

    INPUT_SIZE = 256
    INPUT_RANGE = (0.0, 1.0)
    variant = "full"

    def __init__(self):
        super().__init__()
        self.stem = SameConv2d(3, 8, 3, 2)                               # 256 -> 128 px
        self.stem_act, self.stem_scale = nn.PReLU(8), channel_scale(8)
        self.blocks = nn.Sequential(*[RecropBlock(*b) for b in BLOCKS])  # 128 -> 2 px
        self.out = nn.Conv2d(16, 4, 2)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if image.ndim != 4 or image.shape[1:] != (3, self.INPUT_SIZE, self.INPUT_SIZE):
            raise ValueError(f"HandRecropNet expects (B, 3, 256, 256) RGB, got {tuple(image.shape)}")
        x = self.stem_scale(self.stem_act(self.stem(image)))
        return self.out(self.blocks(x)).reshape(image.shape[0], 2, 2)

    def tflite_layers(self) -> list[nn.Module]:
        return [self.stem, self.stem_act, self.stem_scale] + [m for b in self.blocks for m in b.tflite_layers()] + [self.out]
