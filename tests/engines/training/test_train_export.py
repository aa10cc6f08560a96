"""Export: ONNX matches PyTorch, dynamic batch, TensorRT-parsable layouts, FP16 variant, manifest."""

from __future__ import annotations

import io

import numpy as np
import onnx
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")

from facestream.engines.training.architectures import ARCHITECTURES  # noqa: E402
from facestream.engines.training.export import MAX_DIFF_FP16, MAX_DIFF_FP32, export_checkpoint  # noqa: E402
from facestream.engines.training.onnx_export import to_onnx, verification_samples  # noqa: E402
from facestream.engines.training.train import ProgressBar, TrainConfig, train  # noqa: E402
from facestream.errors import FacestreamError  # noqa: E402


def trained_run(arch, data, folder):
    cfg = TrainConfig(arch=arch, epochs=1, batch_size=8, val_split=0.25, patience=0, augment="none")
    train(cfg, data, folder, progress=ProgressBar(io.StringIO()))
    return folder


def fresh_checkpoint(arch, classes, path):
    """A checkpoint of an untrained model: export correctness does not depend on training."""
    torch.manual_seed(0)
    model = ARCHITECTURES[arch].build(len(classes))
    ckpt = {"arch": arch, "classes": classes, "state_dict": model.state_dict(), "epoch": 0, "config": {}}
    torch.save(ckpt | {"unknown_threshold": 0.5, "threshold_source": "test"}, path)
    return path


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_export_matches_pytorch_and_runs_fp16(arch, tiny_dataset, tmp_path, store):
    ckpt = fresh_checkpoint(arch, tiny_dataset.classes, tmp_path / "model.pt")
    rep = export_checkpoint(ckpt, name=f"clf-{arch}", store=store)
    assert rep.max_abs_diff["fp32"] <= MAX_DIFF_FP32
    assert rep.max_abs_diff["fp16"] <= MAX_DIFF_FP16
    entry = store.get(f"clf-{arch}")
    m = entry.manifest
    assert m.labels == tiny_dataset.classes and m.task == "classifier"
    assert m.inputs[0].shape == ["batch", 1, 128, 128] and m.profiles["input"].max[0] >= 32
    assert 0.0 <= m.extra["unknown_threshold"] <= 1.0 and m.extra["arch"] == arch
    x = verification_samples(seed=1, n=3)
    for precision in ("fp32", "fp16"):
        sess = ort.InferenceSession(str(entry.onnx_path(precision)), providers=["CPUExecutionProvider"])
        for batch in (1, 3):  # dynamic batch axis
            probs = sess.run(None, {"input": x[:batch]})[0]
            assert probs.shape == (batch, 3)
            np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-3)


@pytest.mark.parametrize("arch,op", [("seed-lstm", "LSTM"), ("bigru", "GRU")])
def test_recurrent_layers_export_sequence_major(arch, op):
    model = ARCHITECTURES[arch].build(4).eval()
    nodes = [n for n in to_onnx(model).graph.node if n.op_type == op]
    assert nodes, f"no ONNX {op} node"
    for node in nodes:
        layout = {a.name: a.i for a in node.attribute}.get("layout", 0)
        assert layout == 0  # TensorRT parses only seq-major recurrent ops


@pytest.mark.parametrize("arch", ["seed-attention", "patch-transformer"])
def test_attention_exports_as_plain_matmul_softmax(arch):
    ops = [n.op_type for n in to_onnx(ARCHITECTURES[arch].build(4).eval()).graph.node]
    assert "Softmax" in ops and ops.count("MatMul") >= 2
    assert not {"Attention", "MultiHeadAttention"} & set(ops)  # TensorRT 10.3 (JetPack 6) cannot parse these


def test_embedding_model_exports_embedding_output(tiny_dataset, tmp_path, store):
    ckpt = fresh_checkpoint("cosface", tiny_dataset.classes, tmp_path / "cf.pt")
    entry = export_checkpoint(ckpt, name="cf", store=store).entry
    assert [o.name for o in entry.manifest.outputs] == ["probs", "embedding"]
    sess = ort.InferenceSession(str(entry.onnx_path()), providers=["CPUExecutionProvider"])
    _, emb = sess.run(None, {"input": verification_samples(n=2)})
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)


def test_export_threshold_override_and_bad_checkpoint(tiny_dataset, tmp_path, store):
    run = trained_run("seed-attention", tiny_dataset, tmp_path / "att")
    entry = export_checkpoint(run, name="att", store=store, unknown_threshold=0.7).entry
    assert entry.manifest.extra["unknown_threshold"] == 0.7
    with pytest.raises(FacestreamError, match="must be in"):
        export_checkpoint(run, name="att", store=store, unknown_threshold=1.5)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(FacestreamError, match="not a facestream checkpoint"):
        export_checkpoint(junk, store=store)
    onnx.checker.check_model(onnx.load(str(entry.onnx_path("fp16"))))
