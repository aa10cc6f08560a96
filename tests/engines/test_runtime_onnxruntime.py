"""ONNX Runtime through load_model: outputs match numpy references for every model family, FP16 within
tolerance, batching, IO binding, and the per-call metrics."""

from __future__ import annotations

import numpy as np
import pytest
import tiny_models
from prometheus_client import REGISTRY

from facestream.engines.runtime import load_model

FP32_TOL = 1e-4
FP16_TOL = 5e-3


def _close(outputs, expected, tol):
    assert set(outputs) == set(expected)
    for name, want in expected.items():
        got = outputs[name]
        assert got.shape == want.shape, name
        assert got.dtype == np.float32, name
        np.testing.assert_allclose(got, want, atol=tol, rtol=0, err_msg=name)


@pytest.mark.parametrize("family", sorted(tiny_models.FAMILIES))
def test_onnxruntime_matches_reference(store, family):
    entry, reference = tiny_models.put_tiny_model(store, family)
    model = load_model(entry.manifest.name, backend="onnxruntime", store=store, intra_op_threads=1)
    assert model.backend_name == "onnxruntime"
    for batch, seq in [(1, 1), (3, 7), (9, 2)]:
        inputs = tiny_models.random_inputs(entry.manifest, batch=batch, seq=seq, seed=batch)
        _close(model.infer(inputs), reference(inputs), FP32_TOL)


@pytest.mark.parametrize("family", sorted(tiny_models.FAMILIES))
def test_fp16_variant_within_tolerance(store, family):
    entry, reference = tiny_models.put_tiny_model(store, family)
    model = load_model(entry.manifest.name, backend="onnxruntime", precision="fp16", store=store)
    assert model.precision == "fp16"
    inputs = tiny_models.random_inputs(entry.manifest, batch=4, seq=6)
    out = model.infer(inputs)
    _close(out, reference(inputs), FP16_TOL)
    # The FP16 file really is a different computation: it must not equal FP32 bit for bit.
    fp32 = load_model(entry.manifest.name, backend="onnxruntime", store=store).infer(inputs)
    assert any(not np.array_equal(out[k], fp32[k]) for k in out)


def test_single_array_input_and_float64_cast(store):
    entry, reference = tiny_models.put_tiny_model(store, "cnn", with_fp16=False)
    model = load_model("tiny-cnn", backend="onnxruntime", store=store)
    x = tiny_models.random_inputs(entry.manifest, batch=2)["image"].astype(np.float64)
    _close(model.infer(x), reference({"image": x}), FP32_TOL)


def test_batches_above_max_batch_are_split_and_joined(store):
    entry, reference = tiny_models.put_tiny_model(store, "lstm", with_fp16=False)
    model = load_model("tiny-lstm", backend="onnxruntime", store=store, max_batch=4)
    inputs = tiny_models.random_inputs(entry.manifest, batch=11, seq=3)
    out = model.infer(inputs)
    assert out["hidden_seq"].shape == (3, 11, 6)  # batch is axis 1 in seq-major layout
    _close(out, reference(inputs), FP32_TOL)


def test_io_binding_gives_the_same_outputs(store):
    entry, reference = tiny_models.put_tiny_model(store, "attention", with_fp16=False)
    model = load_model("tiny-attention", backend="onnxruntime", store=store, io_binding=True)
    assert model.backend.io_binding is True
    inputs = tiny_models.random_inputs(entry.manifest, batch=5, seq=4)
    _close(model.infer(inputs), reference(inputs), FP32_TOL)


def test_session_options_follow_config(store):
    tiny_models.put_tiny_model(store, "cnn", with_fp16=False)
    model = load_model("tiny-cnn", backend="onnxruntime", store=store, intra_op_threads=2, inter_op_threads=1)
    opts = model.backend.session.get_session_options()
    assert opts.intra_op_num_threads == 2
    assert opts.inter_op_num_threads == 1
    assert "ORT_ENABLE_ALL" in str(opts.graph_optimization_level)
    assert "SEQUENTIAL" in str(opts.execution_mode)


def test_infer_records_time_and_batch_size(store):
    entry, _ = tiny_models.put_tiny_model(store, "cnn", with_fp16=False)
    model = load_model("tiny-cnn", backend="onnxruntime", store=store)
    labels = {"model": "tiny-cnn", "backend": "onnxruntime"}

    def sample(name):
        return REGISTRY.get_sample_value(name, labels) or 0.0

    calls, items = sample("facestream_engine_infer_seconds_count"), sample("facestream_engine_batch_size_sum")
    model.infer(tiny_models.random_inputs(entry.manifest, batch=3))
    model.infer(tiny_models.random_inputs(entry.manifest, batch=5))
    assert sample("facestream_engine_infer_seconds_count") == calls + 2
    assert sample("facestream_engine_batch_size_sum") == items + 8
    assert sample("facestream_engine_infer_seconds_sum") > 0
    info = {**labels, "reason": "forced"}
    assert REGISTRY.get_sample_value("facestream_engine_backend_info", info) == 1.0
