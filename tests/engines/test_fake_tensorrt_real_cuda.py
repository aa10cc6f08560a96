"""TensorRTBackend with a FAKE tensorrt engine but REAL cuda-python memory, streams and copies.

Needs a GPU (skips without one). The fake engine syncs the stream, copies inputs down from the device buffers
our backend filled, runs ONNX Runtime, and copies outputs back; so a wrong pointer, size, copy direction or
missing sync in our CUDA code shows up as wrong outputs or a CUDA error. CUDA-graph capture cannot capture the
fake (it synchronises), which exercises the capture-failure fallback on real CUDA.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import fake_tensorrt
import numpy as np
import pytest
import tiny_models

from facestream.engines.backends.select import gpu_status, import_cudart
from facestream.engines.backends.tensorrt_backend import TensorRTBackend
from facestream.engines.trt.cuda import Cuda

pytestmark = pytest.mark.skipif(gpu_status()[0] == 0, reason=f"needs a CUDA GPU: {gpu_status()[1]}")


@pytest.fixture
def real_cuda():
    rt = import_cudart()
    fake_tensorrt.use_real_cuda(rt)
    yield Cuda(rt)
    fake_tensorrt.use_real_cuda(None)


def _backend(entry, tmp_path, cuda, **opts) -> TensorRTBackend:
    return TensorRTBackend(
        entry.onnx_path(),
        entry.manifest,
        engine_dir=tmp_path / "e",
        trt_module=fake_tensorrt.module(),
        cuda=cuda,
        **opts,
    )


@pytest.mark.parametrize("family", sorted(tiny_models.FAMILIES))
@pytest.mark.parametrize("graphs", [False, True])
def test_fake_tensorrt_real_cuda_buffers_round_trip(store, tmp_path, real_cuda, family, graphs):
    entry, reference = tiny_models.put_tiny_model(store, family, with_fp16=False)
    backend = _backend(entry, tmp_path, real_cuda, cuda_graphs=graphs)
    name, cc = real_cuda.device_facts(0)
    assert backend.key.gpu_name == name and backend.key.compute_capability == cc
    for batch, seq in [(1, 1), (5, 7), (32, 3), (40, 2)]:
        inputs = tiny_models.random_inputs(entry.manifest, batch=batch, seq=seq, seed=batch)
        out = backend.run(inputs)
        for k, want in reference(inputs).items():
            np.testing.assert_allclose(out[k], want, atol=1e-4, rtol=0, err_msg=k)
    if graphs:
        assert backend._workers[0].graphs == {} and backend._workers[0].no_graph  # capture failed, fell back
    backend.close()


def test_fake_tensorrt_real_cuda_threads_get_own_streams(store, tmp_path, real_cuda):
    entry, reference = tiny_models.put_tiny_model(store, "attention", with_fp16=False)
    backend = _backend(entry, tmp_path, real_cuda)
    inputs = [tiny_models.random_inputs(entry.manifest, batch=4, seq=6, seed=i) for i in range(16)]
    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(backend.run, inputs))
    for x, out in zip(inputs, outs, strict=True):
        np.testing.assert_allclose(out["attended"], reference(x)["attended"], atol=1e-4, rtol=0)
    assert len({int(w.stream) for w in backend._workers}) == len(backend._workers)
    backend.close()
