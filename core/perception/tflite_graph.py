"""Read a .tflite flatbuffer into plain Python: operators in execution order with their options
and constant inputs as numpy arrays (maintainer tool; needs the ``tflite`` package, not TensorFlow).

Constant weights that the graph stores as float16 behind a DEQUANTIZE operator are returned as
float16 arrays (``TfliteOp.constants``), so the converter can keep their storage; sparse constants
behind DENSIFY (dense outer dimensions, one compressed-sparse-row innermost dimension, as the pose
detector stores its 1x1 kernels) are expanded to dense arrays. DEQUANTIZE and DENSIFY operators
themselves are folded away; any other sparse layout fails loudly.
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

    def densify(t: int) -> np.ndarray:
        """The dense value of sparse constant tensor ``t`` (dense dims, then one CSR dim)."""
        tensor = graph.Tensors(t)
        sparsity, dense_shape = tensor.Sparsity(), shape(t)
        dims = [sparsity.DimMetadata(d) for d in range(sparsity.DimMetadataLength())]
        order = sparsity.TraversalOrderAsNumpy().tolist()
        if (order != list(range(len(dense_shape))) or sparsity.BlockMapLength() or len(dims) != len(dense_shape)
                or any(d.Format() != 0 for d in dims[:-1]) or dims[-1].Format() != 1):
            raise NotImplementedError(f"{path}: tensor {t} has a sparse layout this reader does not handle")
        vectors = {1: tflite.Int32Vector, 2: tflite.Uint16Vector, 3: tflite.Uint8Vector}

        def array(kind: int, table) -> np.ndarray:
            vector = vectors[kind]()
            vector.Init(table.Bytes, table.Pos)
            return vector.ValuesAsNumpy().astype(np.int64)

        segments = array(dims[-1].ArraySegmentsType(), dims[-1].ArraySegments())
        indices = array(dims[-1].ArrayIndicesType(), dims[-1].ArrayIndices())
        values = np.frombuffer(model.Buffers(tensor.Buffer()).DataAsNumpy().tobytes(), dtype=_DTYPES[tensor.Type()])
        rows, columns = int(np.prod(dense_shape[:-1])), dense_shape[-1]
        if len(segments) != rows + 1 or segments[-1] != len(indices) or len(values) != len(indices):
            raise ValueError(f"{path}: sparse tensor {t} is inconsistent")
        dense = np.zeros((rows, columns), values.dtype)
        dense[np.repeat(np.arange(rows), np.diff(segments)), indices] = values
        return dense.reshape(dense_shape)

    folded: dict[int, np.ndarray] = {}         # DEQUANTIZE / DENSIFY output tensor -> its constant value
    ops: list[TfliteOp] = []
    for k in range(graph.OperatorsLength()):
        op = graph.Operators(k)
        code = model.OperatorCodes(op.OpcodeIndex())
        kind = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "UNKNOWN")
        inputs, outputs = [int(i) for i in op.InputsAsNumpy()], [int(o) for o in op.OutputsAsNumpy()]
        if kind == "DENSIFY":
            folded[outputs[0]] = densify(inputs[0])
            continue
        if kind == "DEQUANTIZE":
            source = folded[inputs[0]] if inputs[0] in folded else constant(inputs[0])
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
