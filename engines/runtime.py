"""One inference interface over TensorRT (GPU) and ONNX Runtime (CPU).

    model = load_model("face-embedder")          # backend="auto": TensorRT if usable, else ONNX Runtime
    out = model.infer(batch)                     # dict of output name -> array

Inputs are validated against the manifest; each call's time and batch size are exported as Prometheus
histograms; the chosen backend and the reason are logged once and exported as
``facestream_engine_backend_info{model,backend,reason}``.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from typing import Any

import numpy as np

from facestream.errors import FacestreamError

from .backends import Backend
from .backends.select import select_backend
from .manifest import Manifest
from .metrics import BACKEND_INFO, BATCH_SIZE, INFER_SECONDS
from .store import ModelNotFound, ModelStore
from .validation import batch_size_of, validate_inputs

log = logging.getLogger(__name__)
_logged: set[tuple[str, str, str]] = set()
_current_info: dict[str, tuple[str, str, str]] = {}  # model -> labels of its backend_info sample
_logged_lock = threading.Lock()


class InferenceModel:
    """A loaded model: ``infer`` validates, runs on the backend, and records timing."""

    def __init__(self, manifest: Manifest, backend: Backend, reason: str, precision: str):
        self.manifest = manifest
        self.backend = backend
        self.backend_name = backend.name
        self.backend_reason = reason
        self.precision = precision
        labels = {"model": manifest.name, "backend": backend.name}
        self._seconds = INFER_SECONDS.labels(**labels)
        self._batch = BATCH_SIZE.labels(**labels)

    def infer(self, inputs: np.ndarray | dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch. ``inputs`` is an array for single-input models, else a dict by input name."""
        feeds = validate_inputs(self.manifest, inputs)
        start = time.perf_counter()
        outputs = self.backend.run(feeds)
        self._seconds.observe(time.perf_counter() - start)
        self._batch.observe(batch_size_of(self.manifest, feeds))
        return outputs

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> InferenceModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"InferenceModel({self.manifest.name!r}, backend={self.backend_name!r}, precision={self.precision!r})"


def _announce(model: str, backend: str, reason: str) -> None:
    with _logged_lock:
        previous = _current_info.get(model)
        if previous is not None and previous != (model, backend, reason):
            BACKEND_INFO.remove(*previous)  # one sample per model: the backend it runs on now
        _current_info[model] = (model, backend, reason)
        BACKEND_INFO.labels(model=model, backend=backend, reason=reason).set(1)
        if (model, backend, reason) in _logged:
            return
        _logged.add((model, backend, reason))
    log.info("model %s runs on %s (%s)", model, backend, reason)


def _check_options(backend_cls: type, backend: str, opts: dict[str, Any]) -> None:
    params = inspect.signature(backend_cls.__init__).parameters
    allowed = [p for p in params if p not in ("self", "onnx_path", "manifest", "precision")]
    unknown = sorted(set(opts) - set(allowed))
    if unknown:
        raise FacestreamError(f"unknown {backend} option(s) {unknown}; allowed: {', '.join(allowed)}")


def load_model(
    name: str,
    backend: str = "auto",
    precision: str | None = None,
    store: ModelStore | None = None,
    **backend_opts: Any,
) -> InferenceModel:
    """Load ``name`` from the model store onto a backend.

    backend: ``auto`` | ``onnxruntime`` | ``tensorrt``. precision: ``fp32``/``fp16``/... picks the ONNX variant
    (None = the manifest's default). ``backend_opts`` go to the backend (ONNX Runtime: intra_op_threads,
    inter_op_threads, io_binding, max_batch, providers; TensorRT: engine_dir, max_batch, workspace_bytes,
    cuda_graphs, ...).
    """
    store = store or ModelStore()
    try:
        entry = store.get(name)
    except (ModelNotFound, ValueError) as exc:
        raise FacestreamError(str(exc)) from exc
    manifest = entry.manifest
    try:
        onnx_path = entry.onnx_path(precision)
    except KeyError as exc:
        raise FacestreamError(exc.args[0]) from exc
    if not onnx_path.is_file():
        raise FacestreamError(f"model {name!r}: ONNX file {onnx_path} is missing from the store")
    chosen, reason = select_backend(backend)
    used_precision = precision or manifest.precision
    if chosen == "tensorrt":
        from .backends.tensorrt_backend import TensorRTBackend as backend_cls
    else:
        from .backends.onnxruntime_backend import OnnxRuntimeBackend as backend_cls
    _check_options(backend_cls, chosen, backend_opts)
    if chosen == "tensorrt":
        backend_opts = {"precision": used_precision, **backend_opts}
    impl: Backend = backend_cls(onnx_path, manifest, **backend_opts)
    _announce(manifest.name, chosen, reason)
    return InferenceModel(manifest, impl, reason, used_precision)
