"""Small building blocks shared by the perception networks: TensorFlow's SAME padding in torch.

TensorFlow pads "SAME" convolutions so that ``out = ceil(in / stride)``; when the total padding is
odd the extra row/column goes to the bottom/right. A stride-2 3x3 convolution on an even input is
padded (0 before, 1 after), a 5x5 one (1, 2): torch's symmetric ``padding=`` cannot express that,
so strided layers shift their output grid instead (see :class:`SameConv2d`).
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
    """``nn.Conv2d`` with TensorFlow's SAME padding (square odd kernel, no dilation).

    Stride 1: SAME is the symmetric ``kernel // 2``. Stride 2 on an even input: SAME pads one
    row/column less before than after, which puts the windows' centres on odd positions; padding
    ``kernel // 2 + 1`` on every side instead gives the same windows shifted by one output, so the
    first output row and column are dropped (cheaper than padding the larger input with
    ``F.pad``). Other cases pad explicitly. (B, C_in, H, W) -> (B, C_out, ceil(H / s), ceil(W / s)).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1):
        if kernel_size % 2 == 0:
            raise ValueError("SameConv2d needs an odd kernel")
        self.same_padding = kernel_size // 2
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         padding=kernel_size // 2 + (stride == 2), groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stride[0]
        if s == 1:
            return super().forward(x)
        k = self.kernel_size[0]
        if s == 2 and x.shape[-2] % 2 == 0 and x.shape[-1] % 2 == 0:
            return super().forward(x)[:, :, 1:, 1:]
        (top, bottom), (left, right) = same_padding(x.shape[-2], k, s), same_padding(x.shape[-1], k, s)
        return F.conv2d(F.pad(x, (left, right, top, bottom)), self.weight, self.bias, s, 0, 1, self.groups)


def depthwise(channels: int, kernel_size: int, stride: int = 1) -> SameConv2d:
    """A depthwise (one filter per channel) SAME convolution."""
    return SameConv2d(channels, channels, kernel_size, stride, groups=channels)


class Pointwise(nn.Conv2d):
    """1x1 convolution (the channel mixer of a depthwise-separable block), (B, C_in, H, W) ->
    (B, C_out, H, W). On a channels-last input it is one matrix product over the (B, H, W, C)
    view with the bias fused (``F.linear``), no copies; otherwise a plain convolution."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            out = F.linear(x.permute(0, 2, 3, 1), self.weight.view(self.out_channels, self.in_channels), self.bias)
            return out.permute(0, 3, 1, 2)
        return super().forward(x)


def pointwise(in_channels: int, out_channels: int) -> Pointwise:
    """A 1x1 convolution (see :class:`Pointwise`)."""
    return Pointwise(in_channels, out_channels)
