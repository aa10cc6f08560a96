"""A small ONNX graph builder for dlib layers, tracking static (C, H, W) shapes behind a dynamic batch.

dlib semantics kept here: convolutions are cross-correlations with explicit padding (like ONNX Conv);
pool output size is ``1 + (H + 2p - k) // s``; average pooling ignores padded cells (``count_include_pad=0``);
``add_prev`` with unequal shapes zero-pads the smaller input at the end of each axis.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from ..onnx_parts import IR_VERSION, OPSET, GraphParts


class GraphBuilder(GraphParts):
    def __init__(self, name: str):
        super().__init__()
        self.name = name
        self.shapes: dict[str, tuple[int | str, int | str, int | str]] = {}

    def node(self, op: str, inputs: list[str], shape, prefix: str | None = None, **attrs) -> str:
        out = self._fresh(prefix or op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        self.shapes[out] = shape
        return out

    # --- layers -------------------------------------------------------------------------------------

    def normalise(self, x: str, mean_rgb: tuple[float, float, float]) -> str:
        """(pixel - mean) / 256, as dlib's input layers do; callers pass RGB 0..255 floats."""
        mean = self.const("mean_rgb", np.asarray(mean_rgb, np.float32).reshape(1, 3, 1, 1))
        inv = self.const("inv256", np.asarray(1.0 / 256.0, np.float32))
        centred = self.node("Sub", [x, mean], self.shapes[x])
        return self.node("Mul", [centred, inv], self.shapes[x], prefix="normalised")

    def conv(self, x: str, f: dict, affine: dict | None = None) -> str:
        """dlib con_ (optionally with the following affine/bn folded in: w*gamma, b*gamma + beta)."""
        w = f["weights"].astype(np.float32)
        b = f["bias"] if f["bias"] is not None else np.zeros(w.shape[0], np.float32)
        if affine is not None:
            g, beta = affine["gamma"].astype(np.float32), affine["beta"].astype(np.float32)
            w = w * g.reshape(-1, 1, 1, 1)
            b = b * g + beta
        c, h, wd = self.shapes[x]
        k_h, k_w = f["nr"], f["nc"]
        s_y, s_x = f["stride_y"], f["stride_x"]
        p_y, p_x = f["padding_y"], f["padding_x"]
        shape = (w.shape[0], _out_dim(h, k_h, s_y, p_y), _out_dim(wd, k_w, s_x, p_x))
        return self.node(
            "Conv",
            [x, self.const("w", w), self.const("b", b.astype(np.float32))],
            shape,
            prefix="conv",
            kernel_shape=[k_h, k_w],
            strides=[s_y, s_x],
            pads=[p_y, p_x, p_y, p_x],
        )

    def affine(self, x: str, f: dict) -> str:
        c = self.shapes[x][0]
        g = self.const("gamma", f["gamma"].astype(np.float32).reshape(1, c, 1, 1))
        b = self.const("beta", f["beta"].astype(np.float32).reshape(1, c, 1, 1))
        return self.node(
            "Add", [self.node("Mul", [x, g], self.shapes[x]), b], self.shapes[x], prefix="affine"
        )

    def relu(self, x: str) -> str:
        return self.node("Relu", [x], self.shapes[x])

    def pool(self, x: str, kind: str, f: dict) -> str:
        c, h, w = self.shapes[x]
        if f["nr"] == 0 and f["nc"] == 0:
            op = "GlobalMaxPool" if kind == "max_pool" else "GlobalAveragePool"
            return self.node(op, [x], (c, 1, 1))
        k_h, k_w = f["nr"], f["nc"]
        s_y, s_x = f["stride_y"], f["stride_x"]
        p_y, p_x = f["padding_y"], f["padding_x"]
        shape = (c, _out_dim(h, k_h, s_y, p_y), _out_dim(w, k_w, s_x, p_x))
        attrs = {"kernel_shape": [k_h, k_w], "strides": [s_y, s_x], "pads": [p_y, p_x, p_y, p_x]}
        if kind == "max_pool":
            return self.node("MaxPool", [x], shape, **attrs)
        return self.node("AveragePool", [x], shape, count_include_pad=0, **attrs)

    def add_prev(self, a: str, b: str) -> str:
        """dlib add_prev: the output takes the larger of each dimension, zero-padding the smaller input."""
        sa, sb = self.shapes[a], self.shapes[b]
        if any(isinstance(d, str) for d in (*sa, *sb)):
            if sa != sb:
                raise ValueError("add_prev with dynamic spatial shapes needs equal shapes")
            return self.node("Add", [a, b], sa, prefix="add")
        out = tuple(max(x, y) for x, y in zip(sa, sb, strict=True))
        a, b = self._pad_to(a, out), self._pad_to(b, out)
        return self.node("Add", [a, b], out, prefix="add")

    def _pad_to(self, x: str, shape: tuple[int, int, int]) -> str:
        cur = self.shapes[x]
        if cur == shape:
            return x
        ends = [0] + [t - c for t, c in zip(shape, cur, strict=True)]
        pads = self.const("pads", np.asarray([0, 0, 0, 0, *ends], np.int64))
        return self.node("Pad", [x, pads], shape, prefix="pad", mode="constant")

    def fc(self, x: str, f: dict) -> str:
        flat = self.node("Flatten", [x], (int(np.prod(self.shapes[x])),), axis=1)
        w = self.const("fc_w", f["weights"].astype(np.float32))
        out = self.node("MatMul", [flat, w], (f["num_outputs"],), prefix="fc")
        if f["bias"] is not None:
            out = self.node(
                "Add",
                [out, self.const("fc_b", f["bias"].astype(np.float32).reshape(1, -1))],
                (f["num_outputs"],),
                prefix="fc_bias",
            )
        return out

    # --- output --------------------------------------------------------------------------------------

    def finish(
        self, x: str, input_name: str, input_shape: list, output_name: str, output_shape: list, doc: str
    ) -> onnx.ModelProto:
        self.nodes.append(helper.make_node("Identity", [x], [output_name], name=output_name))
        graph = helper.make_graph(
            self.nodes,
            self.name,
            [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, input_shape)],
            [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, output_shape)],
            initializer=self.inits,
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name="facestream.dlib_import",
            doc_string=doc,
        )
        model.ir_version = IR_VERSION
        onnx.checker.check_model(model)
        return model


def _out_dim(size: int | str, k: int, s: int, p: int) -> int | str:
    if isinstance(size, str):
        return size
    return 1 + (size + 2 * p - k) // s
