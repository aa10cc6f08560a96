"""dlib's MMOD CNN face detector (``mmod_human_face_detector.dat``) as a fully convolutional ONNX graph.

The network is a plain chain: 3 x (con 5x5 s2, bn, relu), 3 x (con 5x5 pad 2, bn, relu), con 9x9 pad 4.
Batch norms are folded into the convolutions. The image pyramid, decoding and NMS stay outside the graph
(``facestream.engines.faces.detector``), so the same model runs on any pyramid policy.
"""

from __future__ import annotations

import onnx

from .graph import GraphBuilder
from .reader import DlibFormatError, DlibNet

INPUT = "image"
OUTPUT = "scores"


def receptive_mapping(net: DlibNet) -> tuple[int, int]:
    """(stride, offset): output cell p looks at input pixel stride*p + offset (dlib's output_tensor_to_input)."""
    stride, offset = 1, 0
    for layer in reversed(net.layers):
        if layer.kind != "con":
            continue
        f = layer.fields
        # input = s*p + k//2 - pad for each conv, composed from the output back to the input
        offset = offset * f["stride_y"] + f["nr"] // 2 - f["padding_y"]
        stride *= f["stride_y"]
    return stride, offset


def build_detector(net: DlibNet) -> onnx.ModelProto:
    """ONNX graph: ``image`` (batch,3,height,width) RGB 0..255 -> ``scores`` (batch,1,out_h,out_w)."""
    if net.input_kind != "rgb_pyramid" or net.loss != "loss_mmod":
        raise DlibFormatError(f"not dlib's MMOD detector (input {net.input_kind}, loss {net.loss})")
    g = GraphBuilder("dlib_mmod_detector")
    g.shapes[INPUT] = (3, "height", "width")
    x = g.normalise(INPUT, net.input_mean_rgb)
    layers = net.layers
    i = 0
    while i < len(layers):
        layer = layers[i]
        if layer.kind != "con":
            raise DlibFormatError(f"detector layer {i}: expected con, found {layer.kind}")
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        if nxt is not None and nxt.kind == "affine":
            x = g.conv(x, layer.fields, nxt.fields)
            i += 2
        else:
            x = g.conv(x, layer.fields)
            i += 1
        if i < len(layers) and layers[i].kind == "relu":
            x = g.relu(x)
            i += 1
    return g.finish(
        x,
        INPUT,
        ["batch", 3, "height", "width"],
        OUTPUT,
        ["batch", 1, "out_height", "out_width"],
        doc="dlib mmod_human_face_detector (CC0, Davis King); input RGB 0..255, NCHW; tiled pyramid outside",
    )
