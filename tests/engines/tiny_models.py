"""Tiny ONNX models of each family facestream runs, with numpy reference implementations.

Each ``make_*`` returns (onnx.ModelProto, Manifest, reference) where ``reference(inputs) -> outputs`` computes
the same function in numpy from the same weights, so a backend's outputs can be checked, not trusted.
Shared by tests: pytest puts tests/engines on sys.path (rootdir-relative, no __init__.py), so ``import tiny_models``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from facestream.engines.fp16 import convert_to_fp16
from facestream.engines.manifest import Manifest, ProfileSpec, TensorSpec
from facestream.engines.store import ModelEntry, ModelStore

OPSET = 17
IR_VERSION = 8
Reference = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


def _model(graph: onnx.GraphProto) -> onnx.ModelProto:
    for i, node in enumerate(graph.node):
        node.name = node.name or f"{node.op_type.lower()}_{i}"  # fp16 conversion names its casts after nodes
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="facestream-tests"
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def _init(name: str, arr: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# --- CNN: Conv 3x3 (pad 1) -> Relu -> MaxPool 2x2 -> Flatten -> Gemm --------------------------------------------


def make_cnn(name: str = "tiny-cnn", size: int = 16, channels: int = 4, classes: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.5, (channels, 1, 3, 3)).astype(np.float32)
    b = rng.normal(0, 0.1, (channels,)).astype(np.float32)
    feat = channels * (size // 2) ** 2
    gw = rng.normal(0, 0.2, (classes, feat)).astype(np.float32)
    gb = rng.normal(0, 0.1, (classes,)).astype(np.float32)
    nodes = [
        helper.make_node(
            "Conv", ["image", "conv_w", "conv_b"], ["conv"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]
        ),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("MaxPool", ["relu"], ["pool"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["pool"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])],
        [_init("conv_w", w), _init("conv_b", b), _init("fc_w", gw), _init("fc_b", gb)],
    )
    manifest = Manifest(
        name=name,
        task="classifier",
        inputs=[TensorSpec(name="image", shape=["batch", 1, size, size], value_range=(0.0, 1.0))],
        outputs=[TensorSpec(name="logits", shape=["batch", classes])],
        labels=[f"class{i}" for i in range(classes)],
        licence="test weights, random",
    )

    def reference(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = inputs["image"].astype(np.float64)
        n = x.shape[0]
        padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        conv = np.zeros((n, channels, size, size))
        for dy in range(3):
            for dx in range(3):
                patch = padded[:, 0, dy : dy + size, dx : dx + size]  # (n, size, size)
                conv += patch[:, None] * w[None, :, 0, dy, dx, None, None]
        conv += b[None, :, None, None]
        relu = np.maximum(conv, 0)
        pool = relu.reshape(n, channels, size // 2, 2, size // 2, 2).max(axis=(3, 5))
        logits = pool.reshape(n, -1) @ gw.T.astype(np.float64) + gb
        return {"logits": logits}

    return _model(graph), manifest, reference


# --- LSTM: seq-major (layout 0), dynamic batch and sequence length --------------------------------------------


def make_lstm(name: str = "tiny-lstm", features: int = 8, hidden: int = 6, seed: int = 1):
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.4, (1, 4 * hidden, features)).astype(np.float32)
    r = rng.normal(0, 0.4, (1, 4 * hidden, hidden)).astype(np.float32)
    bias = rng.normal(0, 0.1, (1, 8 * hidden)).astype(np.float32)
    nodes = [
        helper.make_node("LSTM", ["sequence", "W", "R", "B"], ["Y", "Y_h"], hidden_size=hidden, layout=0),
        helper.make_node("Squeeze", ["Y", "axis1"], ["hidden_seq"]),
        helper.make_node("Squeeze", ["Y_h", "axis0"], ["last_hidden"]),
    ]
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("sequence", TensorProto.FLOAT, ["seq", "batch", features])],
        [
            helper.make_tensor_value_info("hidden_seq", TensorProto.FLOAT, ["seq", "batch", hidden]),
            helper.make_tensor_value_info("last_hidden", TensorProto.FLOAT, ["batch", hidden]),
        ],
        [
            _init("W", w),
            _init("R", r),
            _init("B", bias),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
            numpy_helper.from_array(np.array([0], dtype=np.int64), "axis0"),
        ],
    )
    manifest = Manifest(
        name=name,
        task="temporal",
        inputs=[TensorSpec(name="sequence", shape=["seq", "batch", features])],
        outputs=[
            TensorSpec(name="hidden_seq", shape=["seq", "batch", hidden]),
            TensorSpec(name="last_hidden", shape=["batch", hidden]),
        ],
        profiles={
            "sequence": ProfileSpec(min=[1, 1, features], opt=[16, 8, features], max=[64, 32, features])
        },
        licence="test weights, random",
    )

    def reference(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = inputs["sequence"].astype(np.float64)
        seq, n, _ = x.shape
        wb, rb = bias[0, : 4 * hidden], bias[0, 4 * hidden :]
        h = np.zeros((n, hidden))
        c = np.zeros((n, hidden))
        ys = []
        for t in range(seq):
            gates = x[t] @ w[0].T + h @ r[0].T + wb + rb  # ONNX gate order: i, o, f, c
            i, o, f, g = np.split(gates, 4, axis=1)
            c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
            h = _sigmoid(o) * np.tanh(c)
            ys.append(h)
        return {"hidden_seq": np.stack(ys), "last_hidden": h}

    return _model(graph), manifest, reference


# --- Attention: single-head self-attention, MatMul -> Softmax -> MatMul (pre-scaled Q) -------------------------


def make_attention(name: str = "tiny-attention", dim: int = 8, seed: int = 2):
    rng = np.random.default_rng(seed)
    wq, wk, wv = (rng.normal(0, 0.4, (dim, dim)).astype(np.float32) for _ in range(3))
    scale = np.float32(1.0 / np.sqrt(dim))
    nodes = [
        helper.make_node("MatMul", ["tokens", "Wq"], ["q"]),
        helper.make_node("Mul", ["q", "scale"], ["q_scaled"]),
        helper.make_node("MatMul", ["tokens", "Wk"], ["k"]),
        helper.make_node("MatMul", ["tokens", "Wv"], ["v"]),
        helper.make_node("Transpose", ["k"], ["k_t"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q_scaled", "k_t"], ["scores"]),
        helper.make_node("Softmax", ["scores"], ["probs"], axis=-1),
        helper.make_node("MatMul", ["probs", "v"], ["attended"]),
    ]
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("tokens", TensorProto.FLOAT, ["batch", "seq", dim])],
        [helper.make_tensor_value_info("attended", TensorProto.FLOAT, ["batch", "seq", dim])],
        [_init("Wq", wq), _init("Wk", wk), _init("Wv", wv), _init("scale", np.array(scale))],
    )
    manifest = Manifest(
        name=name,
        task="classifier",
        inputs=[TensorSpec(name="tokens", shape=["batch", "seq", dim])],
        outputs=[TensorSpec(name="attended", shape=["batch", "seq", dim])],
        licence="test weights, random",
    )

    def reference(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = inputs["tokens"].astype(np.float64)
        q, k, v = x @ wq, x @ wk, x @ wv
        scores = (q * float(scale)) @ k.transpose(0, 2, 1)
        scores -= scores.max(axis=-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(axis=-1, keepdims=True)
        return {"attended": probs @ v}

    return _model(graph), manifest, reference


# --- FCN: dynamic height/width, an output whose size no input axis names (like a detector's score map) ---------


def make_fcn(name: str = "tiny-fcn", channels: int = 4, seed: int = 3):
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.5, (channels, 1, 3, 3)).astype(np.float32)
    b = rng.normal(0, 0.1, (channels,)).astype(np.float32)
    nodes = [
        helper.make_node(
            "Conv",
            ["image", "conv_w", "conv_b"],
            ["conv"],
            pads=[1, 1, 1, 1],
            kernel_shape=[3, 3],
            strides=[2, 2],
        ),
        helper.make_node("Relu", ["conv"], ["heatmap"]),
    ]
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, "height", "width"])],
        [
            helper.make_tensor_value_info(
                "heatmap", TensorProto.FLOAT, ["batch", channels, "out_height", "out_width"]
            )
        ],
        [_init("conv_w", w), _init("conv_b", b)],
    )
    manifest = Manifest(
        name=name,
        task="detector",
        inputs=[TensorSpec(name="image", shape=["batch", 1, "height", "width"], value_range=(0.0, 1.0))],
        outputs=[TensorSpec(name="heatmap", shape=["batch", channels, "out_height", "out_width"])],
        profiles={"image": ProfileSpec(min=[1, 1, 8, 8], opt=[4, 1, 24, 32], max=[8, 1, 48, 64])},
        licence="test weights, random",
    )

    def reference(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = inputs["image"].astype(np.float64)
        n, _, h, wd = x.shape
        oh, ow = (h + 1) // 2, (wd + 1) // 2
        padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        out = np.zeros((n, channels, oh, ow))
        for dy in range(3):
            for dx in range(3):
                patch = padded[:, 0, dy : dy + 2 * oh : 2, dx : dx + 2 * ow : 2]
                out += patch[:, None] * w[None, :, 0, dy, dx, None, None]
        return {"heatmap": np.maximum(out + b[None, :, None, None], 0)}

    return _model(graph), manifest, reference


FAMILIES: dict[str, Callable[[], tuple[onnx.ModelProto, Manifest, Reference]]] = {
    "cnn": make_cnn,
    "lstm": make_lstm,
    "attention": make_attention,
    "fcn": make_fcn,
}


def random_inputs(manifest: Manifest, batch: int = 4, seq: int = 5, seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs matching the manifest: 'batch'/'seq' axes get the given sizes, other dynamic axes their profile
    opt (3 without a profile); values in value_range."""
    rng = np.random.default_rng(seed)
    out = {}
    for spec in manifest.inputs:
        prof = manifest.profiles.get(spec.name)
        shape = [
            d if isinstance(d, int) else {"batch": batch, "seq": seq}.get(d, prof.opt[i] if prof else 3)
            for i, d in enumerate(spec.shape)
        ]
        lo, hi = spec.value_range or (-1.0, 1.0)
        out[spec.name] = rng.uniform(lo, hi, shape).astype(spec.dtype)
    return out


def put_tiny_model(store: ModelStore, family: str, with_fp16: bool = True) -> tuple[ModelEntry, Reference]:
    """Write a tiny model of ``family`` (cnn | lstm | attention | fcn) into ``store`` with fp32 and fp16 variants."""
    model, manifest, reference = FAMILIES[family]()
    files: dict[str, bytes] = {"fp32": model.SerializeToString()}
    if with_fp16:
        # ONNX Runtime's CPU provider has no float16 LSTM kernel, so the recurrence stays float32 there.
        fp16 = convert_to_fp16(model, op_block_list=["LSTM"] if family == "lstm" else None)
        files["fp16"] = fp16.SerializeToString()
    return store.put(manifest, files), reference
