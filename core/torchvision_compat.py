"""Import torchvision safely on CPU-only torch.

The PyPI ``torchvision==0.28.0`` wheel is a CUDA build: next to the CPU build of torch its C
extension cannot load and ``import torchvision`` fails with
``RuntimeError: operator torchvision::nms does not exist``. Defining the two op schemas it
registers first lets the pure-Python parts work (models, transforms.v2, tv_tensors, box_iou,
roi_align); ``ops.nms`` and ``torchvision.io`` decoding stay unavailable (use OpenCV).
Only done when the C extension really failed; with a matching CUDA torch nothing changes.

Always import torchvision through this module: ``from core.torchvision_compat import torchvision``.
"""

from __future__ import annotations

import importlib
import sys

import torch


def _import_torchvision():
    try:
        return importlib.import_module("torchvision")
    except RuntimeError as e:
        if "torchvision::nms" not in str(e):
            raise
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]  # drop the half-imported package before trying again
    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _import_torchvision.library = lib  # keep the definitions alive
    return importlib.import_module("torchvision")


torchvision = _import_torchvision()
