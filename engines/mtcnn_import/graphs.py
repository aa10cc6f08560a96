"""MTCNN's three networks (P-Net, R-Net, O-Net, as facenet-pytorch defines them) as ONNX graphs.

Each graph takes RGB 0..255 floats, NCHW, and normalises inside as facenet-pytorch does outside its nets:
``(x - 127.5) * 0.0078125``. Layers as in ``facenet_pytorch/models/mtcnn.py``: Conv2d (no padding), PReLU per
channel, MaxPool2d with ``ceil_mode=True``, and in R/O-Net a ``permute(0, 3, 2, 1)`` before the first dense
layer (the weights were ported from Caffe's W-major flattening), then Linear layers and a softmax.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from ..onnx_parts import IR_VERSION, OPSET, GraphParts

INPUT = "image"
MEAN, SCALE = 127.5, 0.0078125
# name -> (input side or None for P-Net's any size, outputs in the order they are built)
NETS = {
    "pnet": (None, ["reg", "prob"]),
    "rnet": (24, ["reg", "prob"]),
    "onet": (48, ["reg", "landmarks", "prob"]),
}


class _Graph(GraphParts):
    def __init__(self, sd: dict[str, np.ndarray]):
        super().__init__()
        self.sd = sd

    def weight(self, key: str, shape: tuple[int, ...] | None = None) -> str:
        w = np.asarray(self.sd[key], np.float32)
        return self.const(key.replace(".", "_"), w if shape is None else w.reshape(shape))

    def node(self, op: str, inputs: list[str], out: str | None = None, **attrs) -> str:
        out = out or self._fresh(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def normalise(self, x: str) -> str:
        centred = self.node("Sub", [x, self.const("mean", np.asarray(MEAN, np.float32))])
        return self.node("Mul", [centred, self.const("scale", np.asarray(SCALE, np.float32))])

    def conv(self, x: str, layer: str) -> str:
        k = self.sd[f"{layer}.weight"].shape[2:]
        return self.node("Conv", [x, self.weight(f"{layer}.weight"), self.weight(f"{layer}.bias")],
                         kernel_shape=list(k), strides=[1, 1], pads=[0, 0, 0, 0])

    def prelu(self, x: str, layer: str, spatial: bool = True) -> str:
        c = self.sd[f"{layer}.weight"].shape[0]
        return self.node("PRelu", [x, self.weight(f"{layer}.weight", (c, 1, 1) if spatial else (c,))])

    def pool(self, x: str, k: int, s: int) -> str:
        return self.node("MaxPool", [x], kernel_shape=[k, k], strides=[s, s], ceil_mode=1)

    def dense(self, x: str, layer: str, out: str | None = None) -> str:
        w = self.const(f"{layer}_wt", np.asarray(self.sd[f"{layer}.weight"], np.float32).T)
        y = self.node("MatMul", [x, w])
        return self.node("Add", [y, self.weight(f"{layer}.bias")], out)

    def flatten_caffe(self, x: str) -> str:
        """facenet-pytorch's ``x.permute(0, 3, 2, 1)`` then flatten."""
        return self.node("Flatten", [self.node("Transpose", [x], perm=[0, 3, 2, 1])], axis=1)

    def finish(self, name: str, side: int | None, outputs: dict[str, list], doc: str) -> onnx.ModelProto:
        in_shape = ["batch", 3, side or "height", side or "width"]
        graph = helper.make_graph(
            self.nodes, name, [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, in_shape)],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs.items()],
            initializer=self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="facestream.mtcnn_import", doc_string=doc)
        model.ir_version = IR_VERSION
        onnx.checker.check_model(model)
        return model


def _trunk(g: _Graph, convs: list[tuple[str, tuple[int, int] | None]]) -> str:
    x = g.normalise(INPUT)
    for i, (layer, pool) in enumerate(convs, start=1):
        x = g.prelu(g.conv(x, layer), f"prelu{i}")
        if pool is not None:
            x = g.pool(x, *pool)
    return x


def build_pnet(sd: dict[str, np.ndarray]) -> onnx.ModelProto:
    """``image`` (batch,3,H,W) -> ``reg`` (batch,4,h,w) box offsets, ``prob`` (batch,2,h,w) softmax."""
    g = _Graph(sd)
    x = _trunk(g, [("conv1", (2, 2)), ("conv2", None), ("conv3", None)])
    g.node("Conv", [x, g.weight("conv4_2.weight"), g.weight("conv4_2.bias")], "reg", kernel_shape=[1, 1])
    logits = g.node("Conv", [x, g.weight("conv4_1.weight"), g.weight("conv4_1.bias")], kernel_shape=[1, 1])
    g.node("Softmax", [logits], "prob", axis=1)
    out = {"reg": ["batch", 4, "out_height", "out_width"], "prob": ["batch", 2, "out_height", "out_width"]}
    return g.finish("mtcnn_pnet", None, out,
                    doc="MTCNN P-Net from facenet-pytorch 2.6.0 (MIT); input RGB 0..255 NCHW, any size >= 12")


def build_rnet(sd: dict[str, np.ndarray]) -> onnx.ModelProto:
    """``image`` (batch,3,24,24) -> ``reg`` (batch,4), ``prob`` (batch,2)."""
    g = _Graph(sd)
    x = g.flatten_caffe(_trunk(g, [("conv1", (3, 2)), ("conv2", (3, 2)), ("conv3", None)]))
    x = g.prelu(g.dense(x, "dense4"), "prelu4", spatial=False)
    g.dense(x, "dense5_2", "reg")
    g.node("Softmax", [g.dense(x, "dense5_1")], "prob", axis=1)
    return g.finish("mtcnn_rnet", 24, {"reg": ["batch", 4], "prob": ["batch", 2]},
                    doc="MTCNN R-Net from facenet-pytorch 2.6.0 (MIT); input RGB 0..255 NCHW 24x24")


def build_onet(sd: dict[str, np.ndarray]) -> onnx.ModelProto:
    """``image`` (batch,3,48,48) -> ``reg`` (batch,4), ``landmarks`` (batch,10: 5 x then 5 y), ``prob``."""
    g = _Graph(sd)
    x = _trunk(g, [("conv1", (3, 2)), ("conv2", (3, 2)), ("conv3", (2, 2)), ("conv4", None)])
    x = g.prelu(g.dense(g.flatten_caffe(x), "dense5"), "prelu5", spatial=False)
    g.dense(x, "dense6_2", "reg")
    g.dense(x, "dense6_3", "landmarks")
    g.node("Softmax", [g.dense(x, "dense6_1")], "prob", axis=1)
    return g.finish("mtcnn_onet", 48, {"reg": ["batch", 4], "landmarks": ["batch", 10], "prob": ["batch", 2]},
                    doc="MTCNN O-Net from facenet-pytorch 2.6.0 (MIT); input RGB 0..255 NCHW 48x48")


BUILDERS = {"pnet": build_pnet, "rnet": build_rnet, "onet": build_onet}
