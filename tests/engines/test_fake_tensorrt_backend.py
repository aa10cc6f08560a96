"""TensorRTBackend driven through a FAKE tensorrt module and a FAKE cuda-python runtime.

The fakes move real bytes (fake device memory is host memory) and execute the ONNX with ONNX Runtime, so
these tests catch wrong copies, shapes, addresses, chunking, padding for CUDA graphs and cache behaviour in
our code. They do not show that real TensorRT or CUDA accept the calls: nothing here ran on a GPU.
"""

from __future__ import annotations

import sys

import fake_tensorrt
import numpy as np
import pytest
import tiny_models

from facestream.engines.backends.tensorrt_backend import TensorRTBackend
from facestream.engines.runtime import load_model
from facestream.engines.trt.cache import EngineCache
from facestream.engines.trt.cuda import Cuda
from facestream.engines.trt.profiles import ProfileConfig
from facestream.errors import FacestreamError

TOL = 1e-4


def _backend(entry, tmp_path, **opts) -> TensorRTBackend:
    opts.setdefault("cuda", Cuda(fake_tensorrt.FakeCudart()))
    return TensorRTBackend(
        entry.onnx_path(),
        entry.manifest,
        engine_dir=tmp_path / "engines",
        trt_module=fake_tensorrt.module(),
        **opts,
    )


def _check(out, want):
    assert set(out) == set(want)
    for name in want:
        assert out[name].shape == want[name].shape, name
        np.testing.assert_allclose(out[name], want[name], atol=TOL, rtol=0, err_msg=name)


@pytest.mark.parametrize("family", sorted(tiny_models.FAMILIES))
def test_fake_tensorrt_backend_matches_reference(store, tmp_path, family):
    entry, reference = tiny_models.put_tiny_model(store, family, with_fp16=False)
    backend = _backend(entry, tmp_path)
    assert backend.outcome.built and backend.outcome.reason == "no engine for this key"
    for batch, seq in [(1, 1), (5, 7), (8, 3)]:
        inputs = tiny_models.random_inputs(entry.manifest, batch=batch, seq=seq, seed=batch)
        _check(backend.run(inputs), reference(inputs))
    backend.close()


def test_fake_tensorrt_second_load_uses_cache_and_changed_key_rebuilds(store, tmp_path):
    entry, reference = tiny_models.put_tiny_model(store, "cnn", with_fp16=False)
    first = _backend(entry, tmp_path)
    second = _backend(entry, tmp_path)
    assert first.outcome.built and not second.outcome.built
    assert second.outcome.reason == "exact key match"
    other_gpu = _backend(
        entry, tmp_path, cuda=Cuda(fake_tensorrt.FakeCudart(name=b"Fake GPU 9.0", cc=(9, 0)))
    )
    assert other_gpu.outcome.built and other_gpu.key.compute_capability == "9.0"
    bigger = _backend(entry, tmp_path, profile_config=ProfileConfig(batch=(1, 8, 64)))
    assert bigger.outcome.built and bigger.key.profiles != first.key.profiles
    assert len(EngineCache(tmp_path / "engines").entries()) == 3
    inputs = tiny_models.random_inputs(entry.manifest, batch=3)
    _check(second.run(inputs), reference(inputs))


def test_fake_tensorrt_corrupt_plan_is_rebuilt(store, tmp_path):
    entry, reference = tiny_models.put_tiny_model(store, "cnn", with_fp16=False)
    first = _backend(entry, tmp_path)
    plan_path = first.outcome.plan_path
    plan_path.write_bytes(plan_path.read_bytes()[:-10])
    again = _backend(entry, tmp_path)
    assert again.outcome.built and "does not match its sidecar" in again.outcome.reason
    inputs = tiny_models.random_inputs(entry.manifest, batch=2)
    _check(again.run(inputs), reference(inputs))
    assert not _backend(entry, tmp_path).outcome.built


def test_fake_tensorrt_batches_above_profile_max_are_chunked(store, tmp_path):
    entry, reference = tiny_models.put_tiny_model(
        store, "lstm", with_fp16=False
    )  # manifest profile: batch <= 32
    backend = _backend(entry, tmp_path, max_batch=4)
    assert backend.max_batch == 4
    inputs = tiny_models.random_inputs(entry.manifest, batch=10, seq=6)
    _check(backend.run(inputs), reference(inputs))


def test_fake_tensorrt_shape_outside_profile_is_refused(store, tmp_path):
    entry, _ = tiny_models.put_tiny_model(store, "attention", with_fp16=False)
    backend = _backend(entry, tmp_path, profile_config=ProfileConfig(seq=(1, 4, 8)))
    with pytest.raises(FacestreamError, match="outside the profile"):
        backend.run(tiny_models.random_inputs(entry.manifest, batch=2, seq=9))


def test_fake_tensorrt_cuda_graphs_replay_per_bucket(store, tmp_path):
    entry, reference = tiny_models.put_tiny_model(store, "cnn", with_fp16=False)
    cudart = fake_tensorrt.FakeCudart()
    backend = _backend(
        entry, tmp_path, cuda=Cuda(cudart), cuda_graphs=True, profile_config=ProfileConfig(batch=(1, 8, 16))
    )
    for batch in (3, 3, 4, 5, 16, 3):  # 3 and 4 share bucket 4; 5 -> 8
        inputs = tiny_models.random_inputs(
            entry.manifest, batch=batch, seed=batch * 7 + cudart.graph_launches
        )
        _check(backend.run(inputs), reference(inputs))
    worker = backend._workers[0]
    assert set(worker.graphs) == {((4, 1, 16, 16),), ((8, 1, 16, 16),), ((16, 1, 16, 16),)}
    assert cudart.graph_launches == 3  # the 2nd, 3rd and 6th calls replayed the bucket-4 graph


def test_fake_tensorrt_failed_capture_falls_back_to_enqueue(store, tmp_path):
    entry, reference = tiny_models.put_tiny_model(store, "cnn", with_fp16=False)
    cudart = fake_tensorrt.FakeCudart(fail_capture=True)
    backend = _backend(entry, tmp_path, cuda=Cuda(cudart), cuda_graphs=True)
    for _ in range(2):
        inputs = tiny_models.random_inputs(entry.manifest, batch=3)
        _check(backend.run(inputs), reference(inputs))
    worker = backend._workers[0]
    assert worker.graphs == {} and worker.no_graph == {((4, 1, 16, 16),)}
    assert cudart.graph_launches == 0


def test_fake_tensorrt_one_context_and_stream_per_thread(store, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    entry, reference = tiny_models.put_tiny_model(store, "attention", with_fp16=False)
    cudart = fake_tensorrt.FakeCudart()
    backend = _backend(entry, tmp_path, cuda=Cuda(cudart))
    inputs = [tiny_models.random_inputs(entry.manifest, batch=2, seq=3, seed=i) for i in range(12)]
    with ThreadPoolExecutor(3) as pool:
        outs = list(pool.map(backend.run, inputs))
    for x, out in zip(inputs, outs, strict=True):
        _check(out, reference(x))
    assert 1 <= len(backend._workers) <= 3
    assert backend.engine.contexts_made == len(backend._workers)
    assert len({w.stream for w in backend._workers}) == len(backend._workers)
    backend.close()
    assert cudart.memory == {} and cudart.streams == set()  # every buffer and stream released


def test_fake_tensorrt_through_load_model(store, tmp_path, monkeypatch):
    """load_model(backend='tensorrt') with the fake module importable as 'tensorrt' and a fake GPU."""
    entry, reference = tiny_models.put_tiny_model(store, "cnn")
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt.module())
    monkeypatch.setattr("facestream.engines.backends.select.import_cudart", lambda: fake_tensorrt.FakeCudart())
    model = load_model(
        "tiny-cnn", backend="auto", precision="fp16", store=store, cuda=Cuda(fake_tensorrt.FakeCudart())
    )
    assert model.backend_name == "tensorrt" and model.backend_reason.startswith("auto; tensorrt 10.3.0.fake")
    assert model.backend.key.precision == "fp16"
    assert model.backend.key.onnx_sha256 == entry.manifest.variant_sha256["fp16"]
    inputs = tiny_models.random_inputs(entry.manifest, batch=6)
    out = model.infer(inputs)
    np.testing.assert_allclose(out["logits"], reference(inputs)["logits"], atol=5e-3)


def test_fake_tensorrt_version_compatible_plans_survive_minor_upgrades(store, tmp_path, monkeypatch):
    entry, _ = tiny_models.put_tiny_model(store, "cnn", with_fp16=False)
    first = _backend(entry, tmp_path, version_compatible=True)
    assert first.outcome.built and first.key.trt_version == "10.x-version-compatible"
    assert first.runtime.engine_host_code_allowed
    monkeypatch.setattr(fake_tensorrt, "__version__", "10.8.0.fake")
    assert not _backend(entry, tmp_path, version_compatible=True).outcome.built
    specific = _backend(entry, tmp_path)
    assert specific.outcome.built and specific.key.trt_version == "10.8.0.fake"
    monkeypatch.setattr(fake_tensorrt, "__version__", "11.4.0.fake")
    assert _backend(entry, tmp_path, version_compatible=True).outcome.built
