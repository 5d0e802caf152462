"""handcap's own real-photo networks: MediaPipe 0.10.21's hand and person-detector models as
batched torch modules.

Contract for the pipeline (stable; see each module's docstring for the details):

* ``load_palm_detector(variant="full"|"lite", device="cpu") -> PalmDetector`` (eval mode, shipped
  weights): ``forward(image (B, 3, 192, 192) RGB in PalmDetector.INPUT_RANGE = (0, 1))`` ->
  ``(boxes (B, 2016, 18) raw regressors in 192 px input pixels relative to the anchors,
  scores (B, 2016) raw logits)``.
* ``load_hand_landmarks(variant="full"|"lite", device="cpu") -> HandLandmarkNet`` (eval mode):
  ``forward(image (B, 3, 224, 224) RGB in HandLandmarkNet.INPUT_RANGE = (0, 1), features=False)``
  -> ``LandmarkOutput(landmarks (B, 21, 3) crop px, presence (B,) probability, handedness (B,)
  probability of MediaPipe's "Right", world (B, 21, 3) metres)``; with ``features=True`` also a
  dict of NCHW feature maps.
* ``load_pose_detector(device="cpu") -> PoseDetector`` (eval mode): MediaPipe's person detector,
  ``forward(image (B, 3, 224, 224) RGB in PoseDetector.INPUT_RANGE = (-1, 1))`` -> ``(boxes
  (B, 2254, 12) raw regressors in 224 px input pixels relative to the anchors, scores (B, 2254)
  raw logits)``: every person, before suppression.

On the CPU the modules run a large batch in slices of ``CPU_CHUNK`` images (faster; the result
is the same). The weights under ``weights/`` were converted from the .tflite files of the mediapipe 0.10.21
wheel by ``python -m core.perception.convert`` (Apache-2.0; see ``weights/LICENSE`` and
``weights/NOTICE``). Nothing here imports mediapipe; ``reference.py`` and ``convert.py`` (maintainer
and test tools) do.
"""

from __future__ import annotations

import os

import torch

from .hand_landmarks import HandLandmarkNet, LandmarkOutput
from .palm_detector import PalmDetector
from .pose_detector import PoseDetector

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")

__all__ = ["HandLandmarkNet", "LandmarkOutput", "PalmDetector", "PoseDetector", "load_hand_landmarks",
           "load_palm_detector", "load_pose_detector", "WEIGHTS_DIR"]


def _load(module: torch.nn.Module, file_name: str, device) -> torch.nn.Module:
    from safetensors.torch import load_file
    path = os.path.join(WEIGHTS_DIR, file_name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} is missing: reinstall handcap or run python -m core.perception.convert")
    state = {k: v.float() for k, v in load_file(path).items()}       # float16 storage -> float32
    module.load_state_dict(state)
    return module.eval().to(device=device, memory_format=torch.channels_last)


def load_palm_detector(variant: str = "full", device="cpu") -> PalmDetector:
    """MediaPipe's palm detector ("full" or "lite") with the shipped weights, in eval mode."""
    return _load(PalmDetector(variant), f"palm_detection_{variant}.safetensors", device)


def load_hand_landmarks(variant: str = "full", device="cpu") -> HandLandmarkNet:
    """MediaPipe's hand-landmark network ("full" or "lite") with the shipped weights, in eval mode."""
    return _load(HandLandmarkNet(variant), f"hand_landmark_{variant}.safetensors", device)


def load_pose_detector(device="cpu") -> PoseDetector:
    """MediaPipe's person detector (BlazePose detector) with the shipped weights, in eval mode."""
    return _load(PoseDetector(), "pose_detection.safetensors", device)
