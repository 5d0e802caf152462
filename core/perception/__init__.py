"""handcap's own real-photo networks: MediaPipe 0.10.21's hand, person-detector, body-landmark and
hand re-crop models as batched torch modules.

Contract for the pipeline (stable; see each module's docstring for the details):

* ``load_palm_detector(variant="full"|"lite", device="cpu") -> PalmDetector`` (eval mode, shipped
  weights): ``forward(image (B, 3, 192, 192) RGB in PalmDetector.INPUT_RANGE = (0, 1))`` ->
  ``(boxes (B, 2016, 18) raw regressors in 192 px input pixels relative to the anchors,
  scores (B, 2016) raw logits)``.
* ``load_hand_landmarks(variant="full"|"lite", device="cpu") -> HandLandmarkNet`` (eval mode):
  ``forward(image (B, 3, 224, 224) RGB in HandLandmarkNet.INPUT_RANGE = (0, 1), features=False)``
  -> ``LandmarkOutput(landmarks (B, 21, 3) crop px, presence (B,) probability, handedness (B,)
  probability of MediaPipe's "Left" (the person's right hand in an unmirrored photo), world (B, 21, 3) metres)``; with ``features=True`` also a
  dict of NCHW feature maps.
* ``load_pose_detector(device="cpu") -> PoseDetector`` (eval mode): MediaPipe's person detector,
  ``forward(image (B, 3, 224, 224) RGB in PoseDetector.INPUT_RANGE = (-1, 1))`` -> ``(boxes
  (B, 2254, 12) raw regressors in 224 px input pixels relative to the anchors, scores (B, 2254)
  raw logits)``: every person, before suppression.
* ``load_pose_landmarks(device="cpu") -> PoseLandmarkNet`` (eval mode): MediaPipe's body-landmark network
  (BlazePose GHUM full), ``forward(image (B, 3, 256, 256) RGB in (0, 1))`` -> ``PoseOutput(landmarks
  (B, 39, 5) crop px + visibility/presence logits, flag (B,), segmentation None unless asked, heatmap
  (B, 64, 64, 39) logits, world (B, 39, 3) metres)``.
* ``load_hand_recrop(device="cpu") -> HandRecropNet`` (eval mode): MediaPipe holistic's hand re-crop
  network, ``forward(image (B, 3, 256, 256) RGB in (0, 1))`` -> ``points (B, 2, 2)`` crop px.

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
from .hand_recrop import HandRecropNet
from .pose_detector import PoseDetector
from .pose_landmarks import PoseLandmarkNet, PoseOutput

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")

__all__ = ["HandLandmarkNet", "HandRecropNet", "LandmarkOutput", "PalmDetector", "PoseDetector", "PoseLandmarkNet",
           "PoseOutput", "load_hand_landmarks", "load_hand_recrop", "load_palm_detector", "load_pose_detector",
           "load_pose_landmarks", "WEIGHTS_DIR"]


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


def load_pose_landmarks(device="cpu") -> PoseLandmarkNet:
    """MediaPipe's body-landmark network (BlazePose GHUM full) with the shipped weights, in eval mode."""
    return _load(PoseLandmarkNet(), "pose_landmark_full.safetensors", device)


def load_hand_recrop(device="cpu") -> HandRecropNet:
    """MediaPipe holistic's hand re-crop network with the shipped weights, in eval mode."""
    return _load(HandRecropNet(), "hand_recrop.safetensors", device)
