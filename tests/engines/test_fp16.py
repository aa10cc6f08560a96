"""FP16 variants keep float32 I/O, stay close to FP32, and survive graphs whose nodes have no names."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from facestream.engines.fp16 import convert_to_fp16


def _unnamed_fanout_model() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", 4]) for n in ("y", "z")]
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 4], np.linspace(-1, 1, 16).astype(np.float32))
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["y"]),
             helper.make_node("Sigmoid", ["h"], ["z"])]  # no node names; "h" feeds two nodes
    m = helper.make_model(helper.make_graph(nodes, "g", [x], outs, [w]), opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 9
    return m


def test_fp16_of_an_unnamed_fanout_graph_is_valid_and_close():
    fp32 = _unnamed_fanout_model()
    fp16 = convert_to_fp16(fp32)
    onnx.checker.check_model(fp16)
    assert fp16.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT, "I/O stays float32"
    assert any(i.data_type == TensorProto.FLOAT16 for i in fp16.graph.initializer), "weights become float16"
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    ref = ort.InferenceSession(fp32.SerializeToString()).run(None, {"x": x})
    got = ort.InferenceSession(fp16.SerializeToString()).run(None, {"x": x})
    for a, b in zip(ref, got, strict=True):
        np.testing.assert_allclose(a, b, atol=5e-3)
    assert not any(n.name for n in fp32.graph.node), "the caller's model is left untouched"
