"""MediaPipe's palm detector (BlazePalm, ``palm_detection_{full,lite}.tflite``) as a torch module.

Contract (the pipeline relies on it; do not change):

* ``PalmDetector.forward(image)``: ``image`` (B, 3, 192, 192) float32 RGB with values in
  ``PalmDetector.INPUT_RANGE`` = (0.0, 1.0) (MediaPipe's ``palm_detection_cpu`` graph converts
  the letterboxed 8-bit image with ``output_tensor_float_range {min: 0 max: 1}``).
* returns ``(boxes, scores)``:
  ``boxes`` (B, 2016, 18): the raw regressors exactly as the TFLite model outputs them, in input
  pixels (192 px frame) relative to the anchor centres: ``[cx, cy, w, h, kx0, ky0, ..., kx6, ky6]``
  (decode with MediaPipe's SSD anchors: 24x24 cells x 2 anchors first, then 12x12 x 6);
  ``scores`` (B, 2016): raw logits exactly as TFLite outputs them (apply a sigmoid yourself;
  MediaPipe clips them to +-100 first).

Architecture (read from the .tflite graph by ``core.perception.convert``): a 5x5 stride-2 stem,
five stages of :class:`BlazeBlock` at 96, 48, 24, 12 and 6 px (4 blocks each in "full", 3 in
"lite"), then a two-level feature pyramid that upsamples bilinearly 6 -> 12 -> 24 px, adds the
backbone features and runs two more blocks at each level, and 1x1 classifier/regressor heads at
12 px (6 anchors per cell) and 24 px (2 anchors per cell).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import SameConv2d, depthwise, pointwise

BLOCKS_PER_STAGE = {"full": 4, "lite": 3}
STAGE_CHANNELS = (32, 64, 128, 256, 256)          # at 96, 48, 24, 12, 6 px
NUM_COORDS = 18                                   # box (4) + 7 keypoints (x, y)


class BlazeBlock(nn.Module):
    """``PReLU(shortcut(x) + pointwise(depthwise5x5(x)))``.

    With stride 2 the shortcut is a 2x2 max-pool, and when the block widens the channels the
    shortcut is zero-padded with the missing channels (as the TFLite graph does with PAD).
    (B, C_in, H, W) -> (B, C_out, H / stride, W / stride).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.stride, self.extra_channels = stride, out_channels - in_channels
        self.dw = depthwise(in_channels, 5, stride)
        self.pw = pointwise(in_channels, out_channels)
        self.act = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw(self.dw(x))
        if self.stride == 2:
            x = F.max_pool2d(x, 2)
        if self.extra_channels:
            x = F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))
        return self.act(x + y)

    def tflite_layers(self) -> list[nn.Module]:
        return [self.dw, self.pw, self.act]


class UpsampleMerge(nn.Module):
    """Feature-pyramid step: ``skip + PReLU(conv1x1(upsample2x(top)))`` (bilinear, half-pixel
    centres like TF's ``half_pixel_centers=True``). top (B, C_top, h, w), skip (B, C, 2h, 2w)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = pointwise(in_channels, out_channels)
        self.act = nn.PReLU(out_channels)

    def forward(self, top: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(top, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return skip + self.act(self.conv(up))

    def tflite_layers(self) -> list[nn.Module]:
        return [self.conv, self.act]


class DetectionHead(nn.Module):
    """1x1 classifier and regressor for ``anchors`` anchors per cell.
    (B, C, H, W) -> scores (B, H*W*anchors), boxes (B, H*W*anchors, 18), cells in row-major
    order and anchors innermost, as TFLite's NHWC reshape orders them."""

    def __init__(self, channels: int, anchors: int):
        super().__init__()
        self.classifier = pointwise(channels, anchors)
        self.regressor = pointwise(channels, anchors * NUM_COORDS)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch = x.shape[0]
        scores = self.classifier(x).permute(0, 2, 3, 1).reshape(batch, -1)
        boxes = self.regressor(x).permute(0, 2, 3, 1).reshape(batch, -1, NUM_COORDS)
        return scores, boxes

    def tflite_layers(self) -> list[nn.Module]:
        return [self.classifier, self.regressor]


def _stage(in_channels: int, out_channels: int, blocks: int, downsample: bool) -> nn.Sequential:
    first = [BlazeBlock(in_channels, out_channels, 2)] if downsample else []
    return nn.Sequential(*first, *[BlazeBlock(out_channels, out_channels) for _ in range(blocks)])


class PalmDetector(nn.Module):
    """BlazePalm: (B, 3, 192, 192) RGB in [0, 1] -> boxes (B, 2016, 18) px, score logits (B, 2016)."""

    INPUT_SIZE = 192
    INPUT_RANGE = (0.0, 1.0)
    NUM_ANCHORS = 2016
    CPU_CHUNK = 8              # images per slice on the CPU (see forward)

    def __init__(self, variant: str = "full"):
        super().__init__()
        if variant not in BLOCKS_PER_STAGE:
            raise ValueError(f"palm detector variant must be one of {sorted(BLOCKS_PER_STAGE)}, not {variant!r}")
        self.variant = variant
        n = BLOCKS_PER_STAGE[variant]
        c = STAGE_CHANNELS
        self.stem = SameConv2d(3, c[0], 5, 2)                 # 192 -> 96 px
        self.stem_act = nn.PReLU(c[0])
        self.stage96 = _stage(c[0], c[0], n, downsample=False)
        self.stage48 = _stage(c[0], c[1], n, downsample=True)
        self.stage24 = _stage(c[1], c[2], n, downsample=True)
        self.stage12 = _stage(c[2], c[3], n, downsample=True)
        self.stage6 = _stage(c[3], c[4], n, downsample=True)
        self.up12 = UpsampleMerge(c[4], c[3])
        self.refine12 = _stage(c[3], c[3], 2, downsample=False)
        self.head12 = DetectionHead(c[3], 6)
        self.up24 = UpsampleMerge(c[3], c[2])
        self.refine24 = _stage(c[2], c[2], 2, downsample=False)
        self.head24 = DetectionHead(c[2], 2)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """image (B, 3, 192, 192) RGB in [0, 1] -> boxes (B, 2016, 18), score logits (B, 2016).
        On the CPU a large batch runs in slices of ``CPU_CHUNK`` images (cache-sized activations)."""
        if image.ndim != 4 or image.shape[1:] != (3, self.INPUT_SIZE, self.INPUT_SIZE):
            raise ValueError(f"PalmDetector expects (B, 3, 192, 192) RGB, got {tuple(image.shape)}")
        if image.device.type != "cpu" or image.shape[0] <= self.CPU_CHUNK:
            return self._forward(image)
        boxes, scores = zip(*(self._forward(part) for part in image.split(self.CPU_CHUNK)))
        return torch.cat(boxes), torch.cat(scores)

    def _forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.stem_act(self.stem(image.contiguous(memory_format=torch.channels_last)))
        x = self.stage96(x)
        f24 = self.stage24(self.stage48(x))                   # (B, 128, 24, 24)
        f12 = self.stage12(f24)                               # (B, 256, 12, 12)
        f6 = self.stage6(f12)                                 # (B, 256, 6, 6)
        p12 = self.refine12(self.up12(f6, f12))
        scores12, boxes12 = self.head12(p12)                  # 864 anchors
        p24 = self.refine24(self.up24(p12, f24))
        scores24, boxes24 = self.head24(p24)                  # 1152 anchors
        return torch.cat([boxes24, boxes12], 1), torch.cat([scores24, scores12], 1)

    def tflite_layers(self) -> list[nn.Module]:
        """The layers with weights in the order the TFLite graph runs them (the converter maps
        CONV_2D / DEPTHWISE_CONV_2D / PRELU operators onto this list one by one)."""
        layers = [self.stem, self.stem_act]
        for stage in (self.stage96, self.stage48, self.stage24, self.stage12, self.stage6):
            layers += [m for block in stage for m in block.tflite_layers()]
        for up, refine, head in ((self.up12, self.refine12, self.head12), (self.up24, self.refine24, self.head24)):
            layers += up.tflite_layers() + [m for block in refine for m in block.tflite_layers()]
            layers += head.tflite_layers()
        return layers
