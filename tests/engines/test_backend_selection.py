"""Backend choice: auto falls back to ONNX Runtime with a reason; a forced TensorRT that cannot run is an error."""

from __future__ import annotations

import importlib.util
import logging

import pytest
import tiny_models

from facestream.engines.backends.select import select_backend, tensorrt_status
from facestream.engines.runtime import load_model
from facestream.errors import FacestreamError

needs_no_tensorrt = pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is not None,
    reason="this host has tensorrt; these tests are for CPU hosts",
)


@needs_no_tensorrt
def test_auto_without_tensorrt_picks_onnxruntime_and_says_why(store, caplog):
    tiny_models.put_tiny_model(store, "cnn", with_fp16=False)
    with caplog.at_level(logging.INFO, logger="facestream.engines.runtime"):
        model = load_model("tiny-cnn", store=store)
    assert model.backend_name == "onnxruntime"
    assert model.backend_reason.startswith("auto; tensorrt does not import")
    assert "runs on onnxruntime (auto; tensorrt does not import" in caplog.text


@needs_no_tensorrt
def test_forced_tensorrt_without_tensorrt_is_an_error(store):
    tiny_models.put_tiny_model(store, "cnn", with_fp16=False)
    with pytest.raises(FacestreamError, match="backend 'tensorrt' was requested but is not available"):
        load_model("tiny-cnn", backend="tensorrt", store=store)


def test_unknown_backend_model_and_precision_are_errors(store):
    tiny_models.put_tiny_model(store, "cnn", with_fp16=False)
    with pytest.raises(FacestreamError, match="unknown backend 'cuda'"):
        select_backend("cuda")
    with pytest.raises(FacestreamError, match="'nope' is not in the store"):
        load_model("nope", store=store)
    with pytest.raises(FacestreamError, match="has no int8 variant"):
        load_model("tiny-cnn", precision="int8", backend="onnxruntime", store=store)


def test_forced_onnxruntime_never_probes_tensorrt():
    assert select_backend("onnxruntime") == ("onnxruntime", "forced")


def test_fake_tensorrt_without_gpu_is_not_used(monkeypatch):
    """tensorrt importing is not enough: cuda-python must see a GPU too."""
    import sys
    import types

    monkeypatch.setitem(sys.modules, "tensorrt", types.SimpleNamespace(__version__="10.3.0"))
    fake_cudart = types.SimpleNamespace(cudaGetDeviceCount=lambda: (35, 0))
    monkeypatch.setattr("facestream.engines.backends.select.import_cudart", lambda: fake_cudart)
    ok, why = tensorrt_status()
    assert not ok and "sees no GPU (35)" in why
    assert select_backend("auto")[0] == "onnxruntime"
    with pytest.raises(FacestreamError, match="sees no GPU"):
        select_backend("tensorrt")
    fake_cudart.cudaGetDeviceCount = lambda: (0, 1)
    assert select_backend("auto") == ("tensorrt", "auto; tensorrt 10.3.0 with 1 CUDA device(s)")


def test_unknown_backend_option_is_an_error(store):
    tiny_models.put_tiny_model(store, "cnn", with_fp16=False)
    with pytest.raises(
        FacestreamError, match=r"unknown onnxruntime option\(s\) \['cuda_graphs'\]; allowed: intra_op"
    ):
        load_model("tiny-cnn", backend="onnxruntime", store=store, cuda_graphs=True)


def test_backend_info_keeps_one_sample_per_model(store, monkeypatch):
    from prometheus_client import REGISTRY

    tiny_models.put_tiny_model(store, "attention", with_fp16=False)
    load_model("tiny-attention", backend="onnxruntime", store=store)
    monkeypatch.setattr(
        "facestream.engines.runtime.select_backend", lambda requested: ("onnxruntime", "auto; test reason")
    )
    load_model("tiny-attention", backend="auto", store=store)
    labels = {"model": "tiny-attention", "backend": "onnxruntime"}
    assert (
        REGISTRY.get_sample_value("facestream_engine_backend_info", {**labels, "reason": "auto; test reason"})
        == 1
    )
    assert REGISTRY.get_sample_value("facestream_engine_backend_info", {**labels, "reason": "forced"}) is None
