"""PyTorch -> ONNX for the face classifiers, and the check against PyTorch on ONNX Runtime.

Graph I/O: ``input`` (batch, 1, 128, 128) float32 in [0, 1] -> ``probs`` (batch, classes) softmax, plus
``embedding`` (batch, D) for embedding models. The TorchScript exporter (``dynamo=False``) is used: it
emits ONNX LSTM/GRU ops in sequence-major layout (layout=0), the only layout TensorRT parses.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from .architectures import IMAGE_SIZE, is_embedding_model

OPSET = 17


class ExportHead(nn.Module):
    """Wraps a classifier so the graph ends in softmax (and also emits the embedding where there is one).

    For embedding models the scaled, normalised class weights are folded into one constant."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.embedding = is_embedding_model(model)
        if self.embedding:
            with torch.no_grad():
                classes = model.scale * torch.nn.functional.normalize(model.weight, dim=1).t().contiguous()
            self.register_buffer("class_weights", classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if self.embedding:
            # The graph output 'embedding' must not also feed the MatMul: the FP16 converter keeps graph
            # outputs float32, which would leave the MatMul with mixed input types.
            raw = self.model.neck(self.model.backbone(x))
            norm = raw.norm(dim=1, keepdim=True).clamp_min(1e-12)
            return torch.softmax(torch.matmul(raw, self.class_weights) / norm, dim=1), raw / norm
        return torch.softmax(self.model(x), dim=1)


def output_names(model: nn.Module) -> list[str]:
    return ["probs", "embedding"] if is_embedding_model(model) else ["probs"]


def to_onnx(model: nn.Module, opset: int = OPSET) -> onnx.ModelProto:
    """FP32 ONNX with a dynamic batch axis."""
    head = ExportHead(model).eval()
    names = output_names(model)
    dummy = torch.rand(2, 1, IMAGE_SIZE, IMAGE_SIZE)
    buf = io.BytesIO()
    with warnings.catch_warnings():  # tracer notes about the RNN/shape ops are expected and verified below
        warnings.simplefilter("ignore")
        _export(head, dummy, buf, names, opset)
    proto = inline_initializer_identities(onnx.load_from_string(buf.getvalue()))
    onnx.checker.check_model(proto)
    return proto


def inline_initializer_identities(proto: onnx.ModelProto) -> onnx.ModelProto:
    """Give each consumer of a de-duplicated weight its own copy instead of an ``Identity`` of it.

    The exporter shares identical initializers (e.g. the seed LSTM's two equal starting biases) through
    Identity nodes; the FP16 converter then casts the shared weight but not the Identity's output, which
    feeds an op kept in FP32, and the FP16 graph no longer type-checks."""
    inits = {i.name: i for i in proto.graph.initializer}
    outputs = {o.name for o in proto.graph.output}
    keep = []
    for node in proto.graph.node:
        if node.op_type == "Identity" and node.input[0] in inits and node.output[0] not in outputs:
            copy = onnx.TensorProto()
            copy.CopyFrom(inits[node.input[0]])
            copy.name = node.output[0]
            proto.graph.initializer.append(copy)
        else:
            keep.append(node)
    del proto.graph.node[:]
    proto.graph.node.extend(keep)
    return proto


def _export(head: nn.Module, dummy: torch.Tensor, buf: io.BytesIO, names: list[str], opset: int) -> None:
    torch.onnx.export(
        head,
        (dummy,),
        buf,
        dynamo=False,
        input_names=["input"],
        output_names=names,
        dynamic_axes={"input": {0: "batch"}, **{n: {0: "batch"} for n in names}},
        opset_version=opset,
        do_constant_folding=True,
    )


def verify_against_torch(model: nn.Module, proto: onnx.ModelProto, samples: np.ndarray) -> float:
    """Max abs difference of every output between PyTorch and ONNX Runtime on ``samples`` (N,1,128,128)."""
    head = ExportHead(model).eval()
    with torch.no_grad():
        ref = head(torch.from_numpy(samples))
    ref = [r.numpy() for r in (ref if isinstance(ref, tuple) else (ref,))]
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": samples})
    return max(float(np.abs(g.astype(np.float64) - r).max()) for g, r in zip(got, ref, strict=True))


def verification_samples(seed: int = 0, n: int = 5) -> np.ndarray:
    """Face-like inputs: smooth random fields in [0, 1] (pure noise would exercise no realistic range)."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((n, 1, 16, 16)).astype(np.float32)
    up = torch.nn.functional.interpolate(
        torch.from_numpy(coarse), size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear"
    )
    return np.clip(up.numpy() + rng.normal(0, 0.05, (n, 1, IMAGE_SIZE, IMAGE_SIZE)), 0, 1).astype(np.float32)
