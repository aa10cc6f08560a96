"""dlib's ResNet face embedder (``dlib_face_recognition_resnet_model_v1.dat``) as ONNX.

The residual wiring is not in the file (tags and skips are byte-identical), so it comes from the known
architecture (``tools/python/src/face_recognition.cpp``): a stem, then blocks of
``con, affine, relu, con, affine, [avg_pool,] add_prev, relu``, where a block with ``avg_pool`` is a
down-sampling block whose skip branch is that pool of the block's input; then a global average pool and
an fc layer without bias. The sequence read from the file is checked against that grammar.
"""

from __future__ import annotations

import onnx

from .graph import GraphBuilder
from .reader import DlibFormatError, DlibNet, Layer

INPUT = "image"
OUTPUT = "descriptor"


def _expect(layers: list[Layer], i: int, kinds: tuple[str, ...]) -> None:
    got = tuple(layer.kind for layer in layers[i : i + len(kinds)])
    if got != kinds:
        raise DlibFormatError(f"embedder layers {i}..: expected {kinds}, found {got}")


def build_embedder(net: DlibNet) -> onnx.ModelProto:
    """ONNX graph: ``image`` (batch,3,150,150) RGB 0..255 float32 -> ``descriptor`` (batch,128) float32."""
    if net.input_kind != "rgb_sized" or net.loss != "loss_metric":
        raise DlibFormatError(f"not dlib's metric embedder (input {net.input_kind}, loss {net.loss})")
    rows, cols = net.input_options["rows"], net.input_options["cols"]
    layers = net.layers
    g = GraphBuilder("dlib_resnet_embedder")
    g.shapes[INPUT] = (3, rows, cols)
    x = g.normalise(INPUT, net.input_mean_rgb)
    _expect(layers, 0, ("con", "affine", "relu", "max_pool"))
    x = g.conv(x, layers[0].fields, layers[1].fields)
    x = g.relu(x)
    x = g.pool(x, "max_pool", layers[3].fields)
    i = 4
    while i < len(layers) and layers[i].kind == "con":
        _expect(layers, i, ("con", "affine", "relu", "con", "affine"))
        block_in = x
        y = g.relu(g.conv(x, layers[i].fields, layers[i + 1].fields))
        y = g.conv(y, layers[i + 3].fields, layers[i + 4].fields)
        i += 5
        if layers[i].kind == "avg_pool":
            skip = g.pool(block_in, "avg_pool", layers[i].fields)
            i += 1
        else:
            skip = block_in
        _expect(layers, i, ("add_prev", "relu"))
        x = g.relu(g.add_prev(y, skip))
        i += 2
    _expect(layers, i, ("avg_pool", "fc"))
    if len(layers) != i + 2:
        raise DlibFormatError(f"embedder has {len(layers) - i - 2} unexpected layers after the fc layer")
    x = g.pool(x, "avg_pool", layers[i].fields)
    x = g.fc(x, layers[i + 1].fields)
    n_out = layers[i + 1].fields["num_outputs"]
    return g.finish(
        x,
        INPUT,
        ["batch", 3, rows, cols],
        OUTPUT,
        ["batch", n_out],
        doc="dlib_face_recognition_resnet_model_v1 (CC0, Davis King); input RGB 0..255, NCHW",
    )
