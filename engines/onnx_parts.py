"""What the hand-built ONNX graphs share (dlib's and MTCNN's converters): the opset and IR version every runtime
here reads, and a node/initializer list with fresh names and constants."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

OPSET = 17
IR_VERSION = 9  # readable by TensorRT 10 and ONNX Runtime >= 1.16


class GraphParts:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0

    def _fresh(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}_{self._n}"

    def const(self, prefix: str, value: np.ndarray) -> str:
        name = self._fresh(prefix)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name
