"""The original .tflite models run by MediaPipe's own TFLite runtime (maintainer and test tool;
needs the ``mediapipe`` package, which handcap does not need at run time).

A tiny calculator graph feeds an 8-bit RGB image through ``ImageToTensorCalculator`` (same size,
so no resampling; values scaled to the model's input range) into ``InferenceCalculator`` and returns every output
tensor as a flat float array. This is the independent reference the converted torch modules are
checked against.
"""

from __future__ import annotations

import os

import numpy as np

_GRAPH = """
input_stream: "image"
node {{ calculator: "ImageToTensorCalculator" input_stream: "IMAGE:image" output_stream: "TENSORS:input"
  options {{ [mediapipe.ImageToTensorCalculatorOptions.ext] {{
    output_tensor_width: {size} output_tensor_height: {size} keep_aspect_ratio: false
    output_tensor_float_range {{ min: {lo} max: {hi} }} border_mode: BORDER_ZERO }} }} }}
node {{ calculator: "InferenceCalculator" input_stream: "TENSORS:input" output_stream: "TENSORS:output"
  options {{ [mediapipe.InferenceCalculatorOptions.ext] {{ model_path: "{model}" delegate {{ xnnpack {{ {threads} }} }} }} }} }}
node {{ calculator: "SplitTensorVectorCalculator" input_stream: "output" {split_outputs}
  options {{ [mediapipe.SplitVectorCalculatorOptions.ext] {{ {ranges} }} }} }}
{to_floats}
"""


def mediapipe_model_path(relative: str) -> str:
    """Absolute path of a model inside the installed mediapipe wheel, e.g.
    ``"palm_detection/palm_detection_full.tflite"``."""
    import mediapipe
    return os.path.join(os.path.dirname(mediapipe.__file__), "modules", relative)


class MediaPipeModel:
    """Run one of the wheel's models (``relative`` as for :func:`mediapipe_model_path`) with
    ``num_outputs`` output tensors on square ``size`` px RGB images, with XNNPACK on ``threads``
    CPU threads (0: MediaPipe's default, as its own graphs run it); 8-bit values are mapped
    linearly onto ``float_range`` as the model's MediaPipe graph does."""

    def __init__(self, relative: str, size: int, num_outputs: int, threads: int = 0,
                 float_range: tuple[float, float] = (0.0, 1.0)):
        import mediapipe
        from google.protobuf import text_format
        from mediapipe.framework import calculator_pb2
        from mediapipe.python import packet_creator, packet_getter
        from mediapipe.python._framework_bindings import calculator_graph, image_frame, resource_util
        resource_util.set_resource_dir(os.path.dirname(os.path.dirname(mediapipe.__file__)))
        self.size, self.num_outputs = size, num_outputs
        self._create, self._format = packet_creator.create_image_frame, image_frame.ImageFormat.SRGB
        text = _GRAPH.format(
            size=size, lo=float(float_range[0]), hi=float(float_range[1]), model=f"mediapipe/modules/{relative}", threads=f"num_threads: {threads}" if threads else "",
            split_outputs=" ".join(f'output_stream: "t{i}"' for i in range(num_outputs)),
            ranges=" ".join(f"ranges {{ begin: {i} end: {i + 1} }}" for i in range(num_outputs)),
            to_floats="\n".join(f'node {{ calculator: "TensorsToFloatsCalculator" input_stream: "TENSORS:t{i}" '
                                f'output_stream: "FLOATS:out{i}" }}' for i in range(num_outputs)))
        text += "".join(f'output_stream: "out{i}"\n' for i in range(num_outputs))
        config = text_format.Parse(text, calculator_pb2.CalculatorGraphConfig())
        self._graph = calculator_graph.CalculatorGraph(graph_config=config)
        self._out: dict[str, np.ndarray] = {}
        for i in range(num_outputs):
            self._graph.observe_output_stream(
                f"out{i}", lambda name, packet: self._out.__setitem__(
                    name, np.array(packet_getter.get_float_list(packet), np.float32)))
        self._graph.start_run()
        self._time = 0

    def __call__(self, images: np.ndarray) -> list[np.ndarray]:
        """(N, size, size, 3) uint8 RGB -> one (N, values) float32 array per output tensor."""
        if images.ndim != 4 or images.shape[1:] != (self.size, self.size, 3) or images.dtype != np.uint8:
            raise ValueError(f"expected (N, {self.size}, {self.size}, 3) uint8 RGB, got {images.shape} {images.dtype}")
        results = [[] for _ in range(self.num_outputs)]
        for image in images:
            self._out.clear()
            self._time += 1
            packet = self._create(image_format=self._format, data=np.ascontiguousarray(image))
            self._graph.add_packet_to_input_stream("image", packet.at(self._time))
            self._graph.wait_until_idle()
            for i in range(self.num_outputs):
                results[i].append(self._out[f"out{i}"])
        return [np.stack(r) for r in results]

    def close(self) -> None:
        self._graph.close()
