"""Small building blocks shared by the perception networks: TensorFlow's SAME padding in torch.

TensorFlow pads "SAME" convolutions so that ``out = ceil(in / stride)``; when the total padding is
odd the extra row/column goes to the bottom/right. A stride-2 3x3 convolution on an even input is
padded (0 before, 1 after), a 5x5 one (1, 2): torch's symmetric ``padding=`` cannot express that,
so strided layers pad explicitly with :func:`same_padding` first.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of one spatial axis under TensorFlow's SAME rule."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow's SAME padding (square kernel, no dilation).

    Stride 1 pads symmetrically inside the convolution (kernel // 2, which equals SAME for odd
    kernels); larger strides pad asymmetrically with ``F.pad`` first.
    Input (B, C_in, H, W) -> (B, C_out, ceil(H / stride), ceil(W / stride)).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         padding=kernel_size // 2 if stride == 1 else 0, groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride[0] > 1:
            k, s = self.kernel_size[0], self.stride[0]
            top, bottom = same_padding(x.shape[-2], k, s)
            left, right = same_padding(x.shape[-1], k, s)
            x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


def depthwise(channels: int, kernel_size: int, stride: int = 1) -> SameConv2d:
    """A depthwise (one filter per channel) SAME convolution."""
    return SameConv2d(channels, channels, kernel_size, stride, groups=channels)


def pointwise(in_channels: int, out_channels: int) -> nn.Conv2d:
    """A 1x1 convolution (the channel mixer of a depthwise-separable block)."""
    return nn.Conv2d(in_channels, out_channels, 1)
