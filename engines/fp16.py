"""FP16 variants of ONNX models. On TensorRT 11 precision lives in the ONNX file, so we ship both.

Inputs and outputs stay float32 (casts inside the graph), so callers never change.
"""

from __future__ import annotations

import onnx


def convert_to_fp16(model: onnx.ModelProto, op_block_list: list[str] | None = None) -> onnx.ModelProto:
    """Return an FP16 copy of ``model`` with float32 inputs/outputs kept (``keep_io_types``)."""
    from onnxconverter_common import float16

    model = _name_nodes(model)
    kwargs = {"keep_io_types": True}
    if op_block_list is not None:
        kwargs["op_block_list"] = op_block_list
    return float16.convert_float_to_float16(model, **kwargs)


def _name_nodes(model: onnx.ModelProto) -> onnx.ModelProto:
    """onnxconverter-common names its Cast nodes after the consumer node; unnamed nodes would collide."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    used = {n.name for n in model.graph.node if n.name}
    for i, node in enumerate(model.graph.node):
        if not node.name:
            name = f"{node.op_type}_{i}"
            while name in used:
                name += "_"
            node.name = name
            used.add(name)
    return model
