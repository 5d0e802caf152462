"""MediaPipe's person detector (BlazePose detector, ``pose_detection.tflite``) as a torch module.

* ``PoseDetector.forward(image)``: ``image`` (B, 3, 224, 224) float32 RGB with values in
  ``PoseDetector.INPUT_RANGE`` = (-1.0, 1.0) (MediaPipe's ``pose_detection_cpu`` graph converts
  the letterboxed 8-bit image with ``output_tensor_float_range {min: -1 max: 1}``).
* returns ``(boxes, scores)``: ``boxes`` (B, 2254, 12) raw regressors exactly as the TFLite
  model outputs them, in input pixels (224 px frame) relative to the anchor centres:
  ``[cx, cy, w, h]`` of the face box, then 4 keypoints (x, y): mid-hip, full-body size/rotation
  point, mid-shoulder, upper-body size/rotation point; anchors: 28x28 cells x 2, then 14x14 x 2,
  then 7x7 x 6 (MediaPipe's SSD anchors, strides 8, 16, 32, 32, 32); ``scores`` (B, 2254): raw
  logits (sigmoid not applied). Every person's detection is there, before any suppression.

Architecture (read from the .tflite graph by ``core.perception.convert``): a MobileNetV2 trunk
(the hand-landmark network's blocks; strided layers pad symmetrically here, TF's explicit PAD
then VALID), a feature pyramid 7 -> 14 -> 28 px that upsamples bilinearly and adds 1x1 lateral
branches, and heads that read depth-to-space (x2) maps through a stride-2 depthwise convolution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import depthwise, pointwise

NUM_COORDS = 12                                   # box (4) + 4 keypoints (x, y)

# (expanded, out, kernel, stride, residual) after the 16-channel first block
BLOCKS = [(64, 24, 3, 2, False), (144, 24, 3, 1, True),
          (144, 40, 5, 2, False), (240, 40, 5, 1, True),
          (240, 80, 3, 2, False), (480, 80, 3, 1, True), (480, 80, 3, 1, True),
          (480, 112, 5, 1, False), (672, 112, 5, 1, True), (672, 112, 5, 1, True),
          (672, 192, 5, 2, False), (1152, 192, 5, 1, True), (1152, 192, 5, 1, True), (1152, 192, 5, 1, True)]


def _symmetric(channels_in: int, channels_out: int, kernel: int, stride: int, groups: int = 1) -> nn.Conv2d:
    """A convolution padded kernel // 2 on every side (TF's explicit PAD, then VALID)."""
    return nn.Conv2d(channels_in, channels_out, kernel, stride, kernel // 2, groups=groups)


def depth_to_space(x: torch.Tensor, block: int = 2) -> torch.Tensor:
    """TensorFlow's DEPTH_TO_SPACE on an NCHW tensor: (B, C*b*b, H, W) -> (B, C, H*b, W*b) with
    TF's channel order (block offset outermost, unlike ``pixel_shuffle``)."""
    b, c, h, w = x.shape
    out = c // (block * block)
    x = x.reshape(b, block, block, out, h, w).permute(0, 3, 4, 1, 5, 2)
    return x.reshape(b, out, h * block, w * block)


class Block(nn.Module):
    """MobileNetV2 block: ``[expand 1x1 + ReLU6] -> depthwise + ReLU6 -> project 1x1 [+ x]``."""

    def __init__(self, cin: int, expanded, cout: int, kernel: int, stride: int, residual: bool):
        super().__init__()
        self.expand = pointwise(cin, expanded) if expanded else None
        hidden = expanded or cin
        self.dw = _symmetric(hidden, hidden, kernel, stride, groups=hidden)
        self.project = pointwise(hidden, cout)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self.expand(x), inplace=True) if self.expand is not None else x
        y = self.project(F.relu6(self.dw(y), inplace=True))
        return y + x if self.residual else y


class Lateral(nn.Module):
    """Pyramid lateral branch: ``ReLU6(pointwise(depthwise3x3(x)))``."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.dw = depthwise(cin, 3)
        self.pw = pointwise(cin, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(self.pw(self.dw(x)), inplace=True)


class Refine(nn.Module):
    """``ReLU6(x + pointwise(depthwise3x3(x)))``."""

    def __init__(self, channels: int):
        super().__init__()
        self.dw = depthwise(channels, 3)
        self.pw = pointwise(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(x + self.pw(self.dw(x)))


class Head(nn.Module):
    """Classifier and regressor on a depth-to-space map: each a stride-2 depthwise 3x3 then 1x1.
    (B, C, 2H, 2W) -> scores (B, H*W*anchors), boxes (B, H*W*anchors, 12)."""

    def __init__(self, channels: int, anchors: int):
        super().__init__()
        self.cls_dw = _symmetric(channels, channels, 3, 2, groups=channels)
        self.cls = pointwise(channels, anchors)
        self.reg_dw = _symmetric(channels, channels, 3, 2, groups=channels)
        self.reg = pointwise(channels, anchors * NUM_COORDS)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch = x.shape[0]
        scores = self.cls(self.cls_dw(x)).permute(0, 2, 3, 1).reshape(batch, -1)
        boxes = self.reg(self.reg_dw(x)).permute(0, 2, 3, 1).reshape(batch, -1, NUM_COORDS)
        return scores, boxes


class PoseDetector(nn.Module):
    """BlazePose detector: (B, 3, 224, 224) RGB in [-1, 1] -> boxes (B, 2254, 12) px, logits (B, 2254)."""

    INPUT_SIZE = 224
    INPUT_RANGE = (-1.0, 1.0)
    NUM_ANCHORS = 2254
    CPU_CHUNK = 8              # images per slice on the CPU (see forward)
    variant = "full"

    def __init__(self):
        super().__init__()
        self.stem = _symmetric(3, 24, 3, 2)                              # 224 -> 112 px
        blocks, channels = [Block(24, None, 16, 3, 1, False)], 16
        for expanded, out, kernel, stride, residual in BLOCKS:
            blocks.append(Block(channels, expanded, out, kernel, stride, residual))
            channels = out
        self.blocks = nn.ModuleList(blocks)
        self.lateral28 = Lateral(40, 96)
        self.lateral14 = Lateral(112, 192)
        self.top_expand = pointwise(192, 1152)
        self.top_dw = depthwise(1152, 3)
        self.up14 = pointwise(1152, 192)
        self.refine14 = nn.Sequential(Refine(192), Refine(192))
        self.up28 = pointwise(192, 96)
        self.refine28 = nn.Sequential(Refine(96), Refine(96))
        self.head28 = Head(24, 2)
        self.head14 = Head(48, 2)
        self.head7 = Head(288, 6)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if image.ndim != 4 or image.shape[1:] != (3, self.INPUT_SIZE, self.INPUT_SIZE):
            raise ValueError(f"PoseDetector expects (B, 3, 224, 224) RGB, got {tuple(image.shape)}")
        if image.device.type != "cpu" or image.shape[0] <= self.CPU_CHUNK:
            return self._forward(image)
        boxes, scores = zip(*(self._forward(part) for part in image.split(self.CPU_CHUNK)))
        return torch.cat(boxes), torch.cat(scores)

    def _forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.relu6(self.stem(image.contiguous(memory_format=torch.channels_last)), inplace=True)
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i == 4:
                lateral28 = self.lateral28(x)                           # (B, 96, 28, 28)
            elif i == 10:
                lateral14 = self.lateral14(x)                           # (B, 192, 14, 14)
        top = F.relu6(self.top_dw(F.relu6(self.top_expand(x), inplace=True)), inplace=True)   # (B, 1152, 7, 7)
        up = F.interpolate(top, scale_factor=2, mode="bilinear", align_corners=False)
        p14 = self.refine14(lateral14 + F.relu6(self.up14(up)))        # (B, 192, 14, 14)
        up = F.interpolate(p14, scale_factor=2, mode="bilinear", align_corners=False)
        p28 = self.refine28(lateral28 + F.relu6(self.up28(up)))        # (B, 96, 28, 28)
        scores, boxes = zip(self.head28(depth_to_space(p28)), self.head14(depth_to_space(p14)),
                            self.head7(depth_to_space(top)))
        return torch.cat(boxes, 1), torch.cat(scores, 1)

    def tflite_layers(self) -> list[nn.Module]:
        """Convolutions in the order the TFLite graph runs them. The graph computes each lateral
        branch right after the expansion of the next block, so it is listed there."""
        layers = [self.stem]
        for i, block in enumerate(self.blocks):
            own = ([block.expand] if block.expand is not None else []) + [block.dw, block.project]
            lateral = {5: self.lateral28, 11: self.lateral14}.get(i)
            layers += own[:1] + [lateral.dw, lateral.pw] + own[1:] if lateral is not None else own
        layers += [self.top_expand, self.top_dw, self.up14]
        layers += [m for r in self.refine14 for m in (r.dw, r.pw)] + [self.up28]
        layers += [m for r in self.refine28 for m in (r.dw, r.pw)]
        for head in (self.head28, self.head14, self.head7):
            layers += [head.cls_dw, head.cls, head.reg_dw, head.reg]
        return layers
