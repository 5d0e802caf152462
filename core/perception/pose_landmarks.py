"""MediaPipe's body-landmark network (BlazePose GHUM full, ``pose_landmark_full.tflite``) as a torch module.

Contract:

* ``PoseLandmarkNet.forward(image)``: ``image`` (B, 3, 256, 256) float32 RGB with values in
  ``PoseLandmarkNet.INPUT_RANGE`` = (0.0, 1.0) (MediaPipe's ``pose_landmark_by_roi`` graph converts the
  turned, letterboxed person crop with ``output_tensor_float_range {min: 0 max: 1}``).
* returns a :class:`PoseOutput` (a NamedTuple), the TFLite outputs reshaped:
  ``landmarks`` (B, 39, 5): x, y in crop pixels (256 px frame), z on the same scale, then the raw
  visibility and presence logits (MediaPipe applies a sigmoid); landmarks 0..32 are BlazePose's body
  points (15/16 the person's left/right wrist, 17/18 pinky, 19/20 index), 33..38 auxiliary points;
  ``flag`` (B,) probability that a person is in the crop (MediaPipe keeps one above 0.5);
  ``segmentation`` (B, 256, 256) person-mask logits, only with ``forward(image, segmentation=True)``
  (None otherwise: handcap does not use the mask, and at 256 px it is a third of the work); ``heatmap`` (B, 64, 64, 39) raw heatmap logits,
  channels last as TFLite stores them (MediaPipe refines the landmarks with their sigmoid);
  ``world`` (B, 39, 3) metres, origin between the hips.

Architecture (read from the .tflite graph by ``core.perception.convert``): a MobileNetV2 encoder
(128 -> 8 px) with a 48-channel skip branch at each of 16, 32 and 64 px (8 at 128 px); a decoder that
upsamples bilinearly and adds the skips, ending in the heatmap (64 px) and the segmentation mask
(256 px); and a regression branch from the 8 px map (two stride-2 stages of residual depthwise blocks
with max-pool shortcuts) whose 2x2 map gives the landmarks, the world landmarks and the flag.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .layers import SameConv2d, depthwise, pointwise

NUM_POSE_LANDMARKS = 39        # 33 body points + 6 auxiliary
LEFT_WRIST, RIGHT_WRIST = 15, 16
LEFT_PINKY, RIGHT_PINKY = 17, 18
LEFT_INDEX, RIGHT_INDEX = 19, 20

# encoder stages after the first block: (expanded, out, kernel, stride, residual); a skip branch
# leaves before the strided blocks marked in SKIPS
BLOCKS = [(64, 24, 3, 2, False), (144, 24, 3, 1, True),
          (144, 32, 5, 2, False), (192, 32, 5, 1, True),
          (192, 64, 3, 2, False), (384, 64, 3, 1, True), (384, 64, 3, 1, True),
          (384, 88, 5, 1, False), (528, 88, 5, 1, True), (528, 88, 5, 1, True),
          (528, 144, 5, 2, False), (864, 144, 5, 1, True), (864, 144, 5, 1, True), (864, 144, 5, 1, True)]
SKIPS = {0: 8, 2: 48, 4: 48, 10: 48}     # block index (strided) -> channels of the skip taken from its input


class PoseOutput(NamedTuple):
    landmarks: torch.Tensor      # (B, 39, 5) crop px x, y, z; visibility and presence logits
    flag: torch.Tensor           # (B,) probability that a person is there
    segmentation: Optional[torch.Tensor]   # (B, 256, 256) mask logits, or None (not asked for)
    heatmap: torch.Tensor        # (B, 64, 64, 39) logits, channels last
    world: torch.Tensor          # (B, 39, 3) metres


def _padded(channels_in: int, channels_out: int, kernel: int, stride: int, groups: int = 1) -> nn.Conv2d:
    """A convolution padded kernel // 2 on every side (TF's explicit PAD, then VALID)."""
    return nn.Conv2d(channels_in, channels_out, kernel, stride, kernel // 2, groups=groups)


class Block(nn.Module):
    """MobileNetV2 block: ``[expand 1x1 + ReLU6] -> depthwise + ReLU6 -> project 1x1 [+ x]``."""

    def __init__(self, cin: int, expanded, cout: int, kernel: int, stride: int, residual: bool):
        super().__init__()
        hidden = expanded or cin
        self.expand = pointwise(cin, expanded) if expanded else None
        self.dw = _padded(hidden, hidden, kernel, stride, groups=hidden) if stride == 2 else depthwise(hidden, kernel)
        self.project = pointwise(hidden, cout)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self.expand(x)) if self.expand is not None else x
        y = self.project(F.relu6(self.dw(y)))
        return y + x if self.residual else y


class Branch(nn.Module):
    """``ReLU6(pointwise(ReLU6(depthwise3x3(x))))``: skips, decoder and head entries."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.dw = depthwise(cin, 3)
        self.pw = pointwise(cin, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(self.pw(F.relu6(self.dw(x))))


class Residual(nn.Module):
    """``ReLU6(shortcut + pointwise(ReLU6(depthwise3x3(x))))``; stride 2: the depthwise is strided
    (SAME) and the shortcut is a 2x2 max-pool."""

    def __init__(self, channels: int, stride: int = 1):
        super().__init__()
        self.stride = stride
        self.dw = depthwise(channels, 3, stride)
        self.pw = pointwise(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = F.max_pool2d(x, 2) if self.stride == 2 else x
        return F.relu6(shortcut + self.pw(F.relu6(self.dw(x))))


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class PoseLandmarkNet(nn.Module):
    """BlazePose GHUM full: (B, 3, 256, 256) RGB in [0, 1] -> :class:`PoseOutput`."""

    INPUT_SIZE = 256
    INPUT_RANGE = (0.0, 1.0)
    CPU_CHUNK = 4               # crops per slice on the CPU (cache-sized activations)
    variant = "full"

    def __init__(self):
        super().__init__()
        self.stem = _padded(3, 24, 3, 2)                                 # 256 -> 128 px
        self.first = Block(24, None, 16, 3, 1, False)
        blocks, skips, channels = [], {}, 16
        for i, (expanded, out, kernel, stride, residual) in enumerate(BLOCKS):
            if i in SKIPS:
                skips[str(i)] = Branch(channels, SKIPS[i])
            blocks.append(Block(channels, expanded, out, kernel, stride, residual))
            channels = out
        self.blocks, self.skips = nn.ModuleList(blocks), nn.ModuleDict(skips)
        self.top_expand = pointwise(144, 864)
        self.top_dw = depthwise(864, 3)
        self.decoder_top = Branch(864, 48)                                # 8 px
        self.segmentation_entry = Branch(48, 8)                           # 64 px
        self.refine128 = nn.Sequential(Residual(8), Residual(8))
        self.refine256 = nn.Sequential(Residual(8), Residual(8))
        self.segmentation_out = SameConv2d(8, 1, 3)
        self.heatmap_out = pointwise(48, NUM_POSE_LANDMARKS)
        self.regression_entry = Branch(864, 288)                         # 8 px
        self.regression4 = nn.Sequential(Residual(288, 2), *[Residual(288) for _ in range(4)])
        self.regression2 = nn.Sequential(Residual(288, 2), *[Residual(288) for _ in range(5)])
        self.landmarks_out = nn.Conv2d(288, NUM_POSE_LANDMARKS * 5, 2)
        self.world_out = nn.Conv2d(288, NUM_POSE_LANDMARKS * 3, 2)
        self.flag_out = nn.Conv2d(288, 1, 2)

    def forward(self, image: torch.Tensor, segmentation: bool = False) -> PoseOutput:
        if image.ndim != 4 or image.shape[1:] != (3, self.INPUT_SIZE, self.INPUT_SIZE):
            raise ValueError(f"PoseLandmarkNet expects (B, 3, 256, 256) RGB, got {tuple(image.shape)}")
        if image.device.type != "cpu" or image.shape[0] <= self.CPU_CHUNK:
            return self._forward(image, segmentation)
        parts = [self._forward(part, segmentation) for part in image.split(self.CPU_CHUNK)]
        return PoseOutput(*(None if field[0] is None else torch.cat(field) for field in zip(*parts)))

    def tflite_forward(self, image: torch.Tensor) -> PoseOutput:
        """Every output of the TFLite graph, in its order (the converter's check)."""
        return self.forward(image, segmentation=True)

    def _forward(self, image: torch.Tensor, segmentation: bool) -> PoseOutput:
        x = F.relu6(self.stem(image.contiguous(memory_format=torch.channels_last)))
        x = self.first(x)
        skips = []
        for i, block in enumerate(self.blocks):
            if str(i) in self.skips:
                skips.append(self.skips[str(i)](x))                      # 128, 64, 32, 16 px
            x = block(x)
        top = F.relu6(self.top_dw(F.relu6(self.top_expand(x))))        # (B, 864, 8, 8)
        y = self.decoder_top(top)                                        # (B, 48, 8, 8)
        for skip in reversed(skips[1:]):
            y = _up(y) + skip                                           # 16, 32, 64 px
        heatmap = self.heatmap_out(y)                                    # (B, 39, 64, 64)
        mask = None
        if segmentation:
            mask = self.refine128(_up(self.segmentation_entry(y)) + skips[0])
            mask = self.segmentation_out(self.refine256(_up(mask)))     # (B, 1, 256, 256)
        r = self.regression2(self.regression4(self.regression_entry(top)))   # (B, 288, 2, 2)
        batch = image.shape[0]
        return PoseOutput(
            landmarks=self.landmarks_out(r).reshape(batch, NUM_POSE_LANDMARKS, 5),
            flag=torch.sigmoid(self.flag_out(r)).reshape(batch),
            segmentation=None if mask is None else mask.reshape(batch, self.INPUT_SIZE, self.INPUT_SIZE),
            heatmap=heatmap.permute(0, 2, 3, 1).contiguous(),
            world=self.world_out(r).reshape(batch, NUM_POSE_LANDMARKS, 3))

    def tflite_layers(self) -> list[nn.Module]:
        """Convolutions in the order the TFLite graph runs them: a strided block's expansion comes
        before the skip branch taken from the same input; the heads run segmentation, heatmap,
        regression."""
        layers = [self.stem, self.first.dw, self.first.project]
        for i, block in enumerate(self.blocks):
            own = ([block.expand] if block.expand is not None else []) + [block.dw, block.project]
            skip = self.skips[str(i)] if str(i) in self.skips else None
            layers += own[:1] + [skip.dw, skip.pw] + own[1:] if skip is not None else own
        layers += [self.top_expand, self.top_dw, self.decoder_top.dw, self.decoder_top.pw]
        layers += [self.segmentation_entry.dw, self.segmentation_entry.pw]
        layers += [m for r in (*self.refine128, *self.refine256) for m in (r.dw, r.pw)]
        layers += [self.segmentation_out, self.heatmap_out, self.regression_entry.dw, self.regression_entry.pw]
        layers += [m for r in (*self.regression4, *self.regression2) for m in (r.dw, r.pw)]
        return layers + [self.landmarks_out, self.world_out, self.flag_out]
