"""Read a .tflite flatbuffer into plain Python: operators in execution order with their options
and constant inputs as numpy arrays (maintainer tool; needs the ``tflite`` package, not TensorFlow).

Constant weights that the graph stores as float16 behind a DEQUANTIZE operator are returned as
float16 arrays (``TfliteOp.constants``), so the converter can keep their storage; DEQUANTIZE
operators themselves are folded away. DENSIFY (sparse constants) is not supported: the graphs
converted here do not need it, and it fails loudly when met.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

_ACTIVATIONS = {0: "", 1: "relu", 2: "relu_n1_to_1", 3: "relu6", 4: "tanh"}
_PADDING = {0: "SAME", 1: "VALID"}
_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 9: np.int8}


@dataclasses.dataclass
class TfliteOp:
    index: int                               # position in the graph's execution order
    kind: str                                # e.g. "CONV_2D"
    inputs: list[int]                        # tensor ids (-1: optional input left out)
    outputs: list[int]
    options: dict                            # stride, padding, activation, ... (kind-dependent)
    constants: dict[int, np.ndarray]         # input position -> constant value (float16 kept)


@dataclasses.dataclass
class TfliteGraph:
    ops: list[TfliteOp]                      # DEQUANTIZE folded away
    tensor_names: dict[int, str]
    tensor_shapes: dict[int, tuple]
    inputs: list[int]
    outputs: list[int]

    def producer(self, tensor: int) -> Optional[TfliteOp]:
        return next((op for op in self.ops if tensor in op.outputs), None)

    def consumers(self, tensor: int) -> list[TfliteOp]:
        return [op for op in self.ops if tensor in op.inputs]


def _options(tflite, op, kind: str) -> dict:
    table = op.BuiltinOptions()
    if table is None:
        return {}
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        o = tflite.Conv2DOptions() if kind == "CONV_2D" else tflite.DepthwiseConv2DOptions()
        o.Init(table.Bytes, table.Pos)
        out = {"stride": (o.StrideH(), o.StrideW()), "padding": _PADDING[o.Padding()],
               "activation": _ACTIVATIONS[o.FusedActivationFunction()],
               "dilation": (o.DilationHFactor(), o.DilationWFactor())}
        if kind == "DEPTHWISE_CONV_2D":
            out["depth_multiplier"] = o.DepthMultiplier()
        return out
    if kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        o = tflite.Pool2DOptions()
        o.Init(table.Bytes, table.Pos)
        return {"stride": (o.StrideH(), o.StrideW()), "kernel": (o.FilterHeight(), o.FilterWidth()),
                "padding": _PADDING[o.Padding()], "activation": _ACTIVATIONS[o.FusedActivationFunction()]}
    if kind in ("ADD", "FULLY_CONNECTED"):
        o = tflite.AddOptions() if kind == "ADD" else tflite.FullyConnectedOptions()
        o.Init(table.Bytes, table.Pos)
        return {"activation": _ACTIVATIONS[o.FusedActivationFunction()]}
    if kind == "RESIZE_BILINEAR":
        o = tflite.ResizeBilinearOptions()
        o.Init(table.Bytes, table.Pos)
        return {"align_corners": bool(o.AlignCorners()), "half_pixel_centers": bool(o.HalfPixelCenters())}
    return {}


def read_tflite(path: str) -> TfliteGraph:
    """Parse ``path`` (a single-subgraph .tflite model)."""
    import tflite
    with open(path, "rb") as f:
        model = tflite.Model.GetRootAsModel(f.read(), 0)
    graph = model.Subgraphs(0)
    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}

    def shape(t: int) -> tuple:
        tensor = graph.Tensors(t)
        return tuple(int(s) for s in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()

    def constant(t: int) -> Optional[np.ndarray]:
        tensor = graph.Tensors(t)
        data = model.Buffers(tensor.Buffer()).DataAsNumpy()
        if isinstance(data, int) or data.size == 0:
            return None
        if tensor.Type() not in _DTYPES:
            raise ValueError(f"{path}: tensor {t} has unsupported type {tensor.Type()}")
        return np.frombuffer(data.tobytes(), dtype=_DTYPES[tensor.Type()]).reshape(shape(t))

    folded: dict[int, np.ndarray] = {}         # DEQUANTIZE output tensor -> float16 source
    ops: list[TfliteOp] = []
    for k in range(graph.OperatorsLength()):
        op = graph.Operators(k)
        code = model.OperatorCodes(op.OpcodeIndex())
        kind = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "UNKNOWN")
        inputs, outputs = [int(i) for i in op.InputsAsNumpy()], [int(o) for o in op.OutputsAsNumpy()]
        if kind == "DENSIFY":
            raise NotImplementedError(f"{path}: sparse (DENSIFY) constants are not supported")
        if kind == "DEQUANTIZE":
            source = constant(inputs[0])
            if source is None or source.dtype != np.float16:
                raise ValueError(f"{path}: DEQUANTIZE op {k} is not a float16 constant")
            folded[outputs[0]] = source
            continue
        constants = {}
        for position, t in enumerate(inputs):
            if t < 0:
                continue
            value = folded.get(t)
            if value is None:
                value = constant(t)
            if value is not None:
                constants[position] = value
        ops.append(TfliteOp(k, kind, inputs, outputs, _options(tflite, op, kind), constants))
    tensor_count = graph.TensorsLength()
    return TfliteGraph(
        ops=ops,
        tensor_names={t: graph.Tensors(t).Name().decode() for t in range(tensor_count)},
        tensor_shapes={t: shape(t) for t in range(tensor_count)},
        inputs=[int(i) for i in graph.InputsAsNumpy()], outputs=[int(o) for o in graph.OutputsAsNumpy()])
