"""``python -m core.perception.convert``: turn MediaPipe's hand and person-detector models into
handcap's weights.

Maintainer tool, run once. It reads the .tflite files inside the installed ``mediapipe==0.10.21``
wheel with the ``tflite`` flatbuffer reader (no TensorFlow), maps each weight-carrying operator
onto the matching layer of handcap's own torch module (``PalmDetector``, ``HandLandmarkNet``,
``PoseDetector``) in
graph execution order (checked: operator kind, kernel, stride, channels; any mismatch stops the
conversion), transposes TensorFlow's NHWC kernels to torch's layout, keeps float16 storage where
the model stores float16 (the loader upcasts; sparse kernels are stored dense), runs the converted module beside MediaPipe's own
TFLite runtime on random and real images, prints the largest differences, and only then writes
``core/perception/weights/<model>.safetensors`` (temp file + rename).

Needs: mediapipe==0.10.21 and tflite==2.18.0 (``pip install -e '.[test]' tflite==2.18.0``).
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import hashlib
import os
import sys
from typing import Callable

import numpy as np
import torch
from torch import nn

from . import WEIGHTS_DIR
from .hand_landmarks import HandLandmarkNet
from .hand_recrop import HandRecropNet
from .layers import SameConv2d
from .palm_detector import PalmDetector
from .pose_detector import PoseDetector
from .pose_landmarks import PoseLandmarkNet
from .tflite_graph import TfliteGraph, TfliteOp, read_tflite

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REAL_IMAGES = os.path.join(os.path.dirname(REPO), "shared", "real_images")
MEDIAPIPE_VERSION = "0.10.21"
TOLERANCE = 1e-3       # pixel outputs / input size, logits / max(1, |logit|), probabilities, metres
# The body-landmark network's person mask (which handcap does not use: the module computes it only on
# request) carries logits of magnitude up to ~2000 out of float16 weights of ~40; its probabilities
# differ from MediaPipe's by up to 2.2e-3 (checked on random and real crops), so it is held to this
# bound instead, reported scaled onto TOLERANCE ("segmentation_mask/5": the difference divided by 5).
SEGMENTATION_TOLERANCE = 5e-3


@dataclasses.dataclass(frozen=True)
class Network:
    source: str                              # path under mediapipe/modules/
    build: Callable[[], nn.Module]
    size: int                                # input px
    num_outputs: int


NETWORKS = {
    "palm_detection_full": Network("palm_detection/palm_detection_full.tflite", lambda: PalmDetector("full"), 192, 2),
    "palm_detection_lite": Network("palm_detection/palm_detection_lite.tflite", lambda: PalmDetector("lite"), 192, 2),
    "hand_landmark_full": Network("hand_landmark/hand_landmark_full.tflite", lambda: HandLandmarkNet("full"), 224, 4),
    "hand_landmark_lite": Network("hand_landmark/hand_landmark_lite.tflite", lambda: HandLandmarkNet("lite"), 224, 4),
    "pose_detection": Network("pose_detection/pose_detection.tflite", PoseDetector, 224, 2),
    "pose_landmark_full": Network("pose_landmark/pose_landmark_full.tflite", PoseLandmarkNet, 256, 5),
    "hand_recrop": Network("holistic_landmark/hand_recrop.tflite", HandRecropNet, 256, 1),
}


class ConversionError(RuntimeError):
    pass


def _check(condition: bool, where: str, message: str) -> None:
    if not condition:
        raise ConversionError(f"{where}: {message}")


def _check_padding(graph: TfliteGraph, op: TfliteOp, layer: nn.Conv2d, where: str) -> None:
    """The layer pads as the graph does: SAME -> a SameConv2d (or stride 1 with kernel // 2);
    VALID after a PAD operator -> a plain convolution with that (symmetric) padding; VALID with
    no PAD before it -> a convolution that does not pad."""
    k, pad = layer.kernel_size[0], layer.padding[0]
    producer = graph.producer(op.inputs[0])
    if k == 1:
        _check(pad == 0, where, "a 1x1 layer must not pad")
    elif op.options["padding"] == "SAME":
        _check(isinstance(layer, SameConv2d) or (layer.stride == (1, 1) and pad == k // 2), where,
               "the graph pads SAME, the module's layer does not")
    elif producer is None or producer.kind != "PAD":
        _check(not isinstance(layer, SameConv2d) and pad == 0, where, "the graph does not pad, the module's layer does")
    else:
        _check(1 in producer.constants, where, "PAD without constant paddings")
        pads = producer.constants[1].tolist()
        _check(not isinstance(layer, SameConv2d) and pads == [[0, 0], [pad, pad], [pad, pad], [0, 0]], where,
               f"graph pads {pads}, the module's layer pads {pad} on every side")


def _conv_tensors(op: TfliteOp, layer: nn.Module, name: str) -> dict[str, np.ndarray]:
    """A CONV_2D / DEPTHWISE_CONV_2D operator -> ``{name.weight, name.bias}`` in torch layout."""
    where = f"op {op.index} {op.kind} -> {name}"
    _check(isinstance(layer, nn.Conv2d), where, f"expected a convolution, the module has {type(layer).__name__}")
    _check(set(op.constants) == {1, 2}, where, "weights and bias must be constants")
    kernel, bias = op.constants[1], op.constants[2]
    if op.kind == "CONV_2D":
        _check(layer.groups == 1, where, "the module's layer is grouped but the graph's is a full convolution")
        weight = kernel.transpose(0, 3, 1, 2)                       # (O, kh, kw, I) -> (O, I, kh, kw)
    else:
        _check(layer.groups == layer.in_channels == layer.out_channels, where, "the module's layer is not depthwise")
        _check(op.options["depth_multiplier"] == 1, where, "depth multiplier must be 1")
        weight = kernel.transpose(3, 0, 1, 2)                       # (1, kh, kw, C) -> (C, 1, kh, kw)
    _check(tuple(weight.shape) == tuple(layer.weight.shape), where,
           f"kernel {tuple(weight.shape)} vs module {tuple(layer.weight.shape)}")
    _check(tuple(bias.shape) == tuple(layer.bias.shape), where, f"bias {bias.shape} vs module {tuple(layer.bias.shape)}")
    _check(op.options["stride"] == tuple(layer.stride), where, f"stride {op.options['stride']} vs module {layer.stride}")
    _check(op.options["dilation"] == (1, 1), where, "dilation is not supported")
    return {f"{name}.weight": np.ascontiguousarray(weight), f"{name}.bias": bias}


def _prelu_tensors(op: TfliteOp, layer: nn.Module, name: str) -> dict[str, np.ndarray]:
    where = f"op {op.index} PRELU -> {name}"
    _check(isinstance(layer, nn.PReLU), where, f"expected a PReLU, the module has {type(layer).__name__}")
    alpha = op.constants.get(1)
    _check(alpha is not None and alpha.size == layer.weight.numel(), where,
           f"alpha {None if alpha is None else alpha.shape} vs module {tuple(layer.weight.shape)}")
    return {f"{name}.weight": alpha.reshape(-1)}


def _linear_tensors(op: TfliteOp, layer: nn.Linear, name: str) -> dict[str, np.ndarray]:
    where = f"op {op.index} FULLY_CONNECTED -> {name}"
    weight, bias = op.constants.get(1), op.constants.get(2)
    _check(weight is not None and tuple(weight.shape) == tuple(layer.weight.shape), where,
           f"weight {None if weight is None else weight.shape} vs module {tuple(layer.weight.shape)}")
    _check(bias is not None and tuple(bias.shape) == tuple(layer.bias.shape), where, "bias shape")
    _check(op.options["activation"] == "", where, "fused activation on an output layer")
    return {f"{name}.weight": weight, f"{name}.bias": bias}


def map_weights(graph: TfliteGraph, module: nn.Module) -> dict[str, np.ndarray]:
    """The module's state dict as numpy arrays (float16 kept where the graph stores float16).

    Order: the graph's CONV_2D, DEPTHWISE_CONV_2D and PRELU operators in execution order map one
    to one onto ``module.tflite_layers()``; FULLY_CONNECTED operators map by the name of the graph
    output they feed (``module.tflite_outputs()``). Every module parameter must be filled exactly
    once, with the same shape."""
    names = {id(m): n for n, m in module.named_modules()}
    weighted = [op for op in graph.ops if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "PRELU")]
    layers = module.tflite_layers()
    _check(len(weighted) == len(layers), type(module).__name__,
           f"the graph has {len(weighted)} convolution/PReLU operators, the module {len(layers)} layers")
    tensors: dict[str, np.ndarray] = {}
    for op, layer in zip(weighted, layers):
        name = names[id(layer)]
        if op.kind == "PRELU":
            tensors.update(_prelu_tensors(op, layer, name))
        else:
            tensors.update(_conv_tensors(op, layer, name))
            _check_padding(graph, op, layer, f"op {op.index} {op.kind} -> {name}")
    outputs = module.tflite_outputs() if hasattr(module, "tflite_outputs") else {}
    for op in (op for op in graph.ops if op.kind == "FULLY_CONNECTED"):
        tensor = op.outputs[0]
        following = graph.consumers(tensor)
        if len(following) == 1 and following[0].kind == "LOGISTIC":
            tensor = following[0].outputs[0]
        output_name = graph.tensor_names[tensor]
        _check(output_name in outputs, f"op {op.index} FULLY_CONNECTED", f"feeds {output_name!r}, not a known output")
        tensors.update(_linear_tensors(op, outputs[output_name], names[id(outputs[output_name])]))
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    _check(expected == got, type(module).__name__,
           f"parameters not covered: {sorted(set(expected) - set(got))}, extra: {sorted(set(got) - set(expected))}")
    return tensors


def check_images(size: int, count: int = 4, seed: int = 0) -> np.ndarray:
    """(N, size, size, 3) uint8: random images plus real photos (``../shared/real_images``) when
    present, squashed to ``size`` px."""
    import cv2
    images = list(np.random.default_rng(seed).integers(0, 256, (count, size, size, 3), dtype=np.uint8))
    for path in sorted(glob.glob(os.path.join(REAL_IMAGES, "*", "*.jpg")))[::4][:count]:
        bgr = cv2.imread(path)
        images.append(cv2.resize(bgr, (size, size), interpolation=cv2.INTER_AREA)[:, :, ::-1])
    return np.stack(images)


def torch_outputs(module: nn.Module, images: np.ndarray) -> list[np.ndarray]:
    """The module's outputs flattened per image, in the TFLite graph's output order (8-bit
    values mapped onto the module's INPUT_RANGE, as MediaPipe's graphs do)."""
    lo, hi = module.INPUT_RANGE
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() * ((hi - lo) / 255.0) + lo
    with torch.no_grad():
        out = module.tflite_forward(x) if hasattr(module, "tflite_forward") else module(x)
    out = [out] if isinstance(out, torch.Tensor) else out
    return [t.reshape(len(images), -1).numpy() for t in out]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -80.0, 80.0)))


def differences(network: Network, ours: list[np.ndarray], reference: list[np.ndarray]) -> dict[str, float]:
    """Largest differences per output: pixel outputs divided by the input size; score logits
    relative to max(1, |logit|) (a logit of -200 carries float32 rounding of 1e-4 .. 1e-3, and
    MediaPipe clips logits to +-100 before its sigmoid); probabilities and metres absolute."""
    if isinstance(network.build(), (PalmDetector, PoseDetector)):
        boxes, logits = ours
        return {"boxes/size": float(np.abs(boxes - reference[0]).max() / network.size),
                "score_logits_rel": float((np.abs(logits - reference[1]) / np.maximum(1, np.abs(reference[1]))).max())}
    if isinstance(network.build(), HandRecropNet):
        return {"points/size": float(np.abs(ours[0] - reference[0]).max() / network.size)}
    if isinstance(network.build(), PoseLandmarkNet):
        n = len(ours[0])
        landmarks, reference_landmarks = ours[0].reshape(n, -1, 5), reference[0].reshape(n, -1, 5)
        return {"landmarks/size": float(np.abs(landmarks[..., :3] - reference_landmarks[..., :3]).max() / network.size),
                "visibility_presence_logits_rel": float((np.abs(landmarks[..., 3:] - reference_landmarks[..., 3:])
                                                         / np.maximum(1, np.abs(reference_landmarks[..., 3:]))).max()),
                "flag": float(np.abs(ours[1] - reference[1]).max()),
                "segmentation_mask/5": float(np.abs(_sigmoid(ours[2]) - _sigmoid(reference[2])).max()) * TOLERANCE / SEGMENTATION_TOLERANCE,
                "heatmap_logits_rel": float((np.abs(ours[3] - reference[3]) / np.maximum(1, np.abs(reference[3]))).max()),
                "world_m": float(np.abs(ours[4] - reference[4]).max())}
    names, scales = ("landmarks/size", "presence", "handedness", "world_m"), (network.size, 1.0, 1.0, 1.0)
    return {n: float(np.abs(a - b).max() / s) for n, a, b, s in zip(names, ours, reference, scales)}


def convert(name: str, out_dir: str, check_only: bool = False) -> dict[str, float]:
    """Convert one network, check it against MediaPipe, write its safetensors; returns the
    largest differences."""
    from safetensors.numpy import save_file

    from .reference import MediaPipeModel, mediapipe_model_path
    network = NETWORKS[name]
    source = mediapipe_model_path(network.source)
    module = network.build()
    tensors = map_weights(read_tflite(source), module)
    module.load_state_dict({k: torch.from_numpy(v.astype(np.float32)) for k, v in tensors.items()})
    module.eval()
    images = check_images(network.size)
    reference = MediaPipeModel(network.source, network.size, network.num_outputs, float_range=module.INPUT_RANGE)
    try:
        diffs = differences(network, torch_outputs(module, images), reference(images))
    finally:
        reference.close()
    print(f"{name}: {len(images)} images, max |torch - mediapipe|: "
          + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()), flush=True)
    if max(diffs.values()) > TOLERANCE:
        raise ConversionError(f"{name}: disagrees with MediaPipe beyond {TOLERANCE}: {diffs}")
    if not check_only:
        with open(source, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        metadata = {"source": f"mediapipe=={MEDIAPIPE_VERSION} mediapipe/modules/{network.source}",
                    "source_sha256": digest, "licence": "Apache-2.0 (see LICENSE and NOTICE beside this file)",
                    "module": type(module).__name__, "variant": module.variant}
        path = os.path.join(out_dir, f"{name}.safetensors")
        temporary = path + ".tmp"
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, temporary, metadata=metadata)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
        print(f"  wrote {os.path.relpath(path)} ({os.path.getsize(path) / 1e6:.2f} MB)", flush=True)
    return diffs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m core.perception.convert",
        description="Convert MediaPipe 0.10.21's hand and person-detector models (.tflite inside the installed "
                    "mediapipe wheel) "
                    "into handcap's torch weights (safetensors), after checking the converted modules "
                    f"against MediaPipe's own TFLite runtime (largest difference must stay below {TOLERANCE}: "
                    "pixel outputs divided by the input size, score logits relative to max(1, |logit|), probabilities, metres). Needs mediapipe "
                    "and the tflite flatbuffer reader; a maintainer runs it once and commits the result.")
    parser.add_argument("networks", nargs="*", metavar="NETWORK", help=f"which to convert (default: all of {', '.join(sorted(NETWORKS))})")
    parser.add_argument("--out", default=WEIGHTS_DIR, help="output folder (default: core/perception/weights)")
    parser.add_argument("--check-only", action="store_true", help="map and compare, write nothing")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.networks) - set(NETWORKS))
    if unknown:
        parser.error(f"unknown network(s) {unknown}; choose from {sorted(NETWORKS)}")
    os.makedirs(args.out, exist_ok=True)
    try:
        for name in args.networks or sorted(NETWORKS):
            convert(name, args.out, args.check_only)
    except ConversionError as e:
        print(f"conversion failed: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
