"""TensorRT backend: engine from the cache (built on a miss), one execution context + stream per worker thread,
pinned host and device buffers through cuda-python, ``execute_async_v3`` on a non-default stream, and optional
CUDA-graph capture per (batch bucket, shape) with fallback to plain enqueue.

``tensorrt`` and ``cuda`` are imported lazily; tests inject fakes through ``trt_module`` / ``cuda``.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from facestream.errors import FacestreamError

from ..manifest import Manifest
from ..metrics import ENGINE_BUILD_SECONDS, ENGINE_BUILDS
from ..trt.buffers import BufferSpec, batch_buckets, bucket_for, plan_buffers
from ..trt.build import BuildSettings, build_plan
from ..trt.cache import EngineCache, EngineKey
from ..trt.cuda import Cuda, CudaError, PinnedBuffer
from ..trt.profiles import ProfileConfig, derive_profiles, max_batch_of, profiles_for_key
from .batching import batch_axes, run_in_chunks

log = logging.getLogger(__name__)
MAX_GRAPHS_PER_WORKER = 32


def engine_key(
    manifest: Manifest,
    precision: str,
    trt_version: str,
    gpu: tuple[str, str],
    profiles: dict,
    settings: BuildSettings,
) -> EngineKey:
    if settings.version_compatible:
        # Version-compatible plans load on later TensorRT releases of the same major version, so the key holds
        # the major version only; a runtime too old for the plan fails to deserialise it and rebuilds.
        trt_version = f"{trt_version.split('.')[0]}.x-version-compatible"
    return EngineKey(
        model=manifest.name,
        onnx_sha256=manifest.sha_for(precision),
        trt_version=trt_version,
        gpu_name=gpu[0],
        compute_capability=gpu[1],
        precision=precision,
        profiles=profiles_for_key(profiles),
        version_compatible=settings.version_compatible,
        hardware_compatibility=settings.hardware_compatibility,
    )


class _Worker:
    """What one thread owns: an execution context, a stream, buffers, captured graphs."""

    def __init__(self, engine: Any, cuda: Cuda, plan_for: Callable[[Any], list[BufferSpec]]):
        self.cuda = cuda
        self.context = engine.create_execution_context()
        if self.context is None:
            raise FacestreamError("TensorRT could not create an execution context (out of GPU memory?)")
        plan = plan_for(self.context)
        self.stream = cuda.stream()
        self.stream_handle = int(self.stream)  # TensorRT takes the raw cudaStream_t value
        self.buffers: dict[str, PinnedBuffer] = {}
        self.graphs: dict[tuple, tuple[Any, Any]] = {}
        self.no_graph: set[tuple] = set()
        try:
            for spec in plan:
                self.buffers[spec.name] = PinnedBuffer(cuda, spec.nbytes)
                if not self.context.set_tensor_address(spec.name, self.buffers[spec.name].device):
                    raise FacestreamError(f"TensorRT rejected the address of tensor {spec.name!r}")
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        for graph, graph_exec in self.graphs.values():
            self.cuda.destroy_graph(graph, graph_exec)
        self.graphs = {}
        for buf in self.buffers.values():
            buf.free()
        self.buffers = {}
        self.cuda.destroy_stream(self.stream)


class TensorRTBackend:
    name = "tensorrt"

    def __init__(
        self,
        onnx_path: Path,
        manifest: Manifest,
        precision: str = "fp32",
        engine_dir: Path | str | None = None,
        profile_config: ProfileConfig | None = None,
        max_batch: int | None = None,
        workspace_bytes: int = 1 << 30,
        version_compatible: bool = False,
        hardware_compatibility: str = "none",
        cuda_graphs: bool = False,
        device: int = 0,
        trt_module: Any = None,
        cuda: Cuda | None = None,
        emit: Any = None,
    ):
        self.trt = trt_module or importlib.import_module("tensorrt")
        self.cuda = cuda or Cuda()
        self.cuda.set_device(device)
        self.manifest, self.precision, self.cuda_graphs = manifest, precision, cuda_graphs
        self.profiles = derive_profiles(manifest, profile_config)
        limit = max_batch_of(manifest, self.profiles)
        self.max_batch = min(max_batch, limit) if (max_batch and limit) else (max_batch or limit)
        self.cache = EngineCache(engine_dir)
        gpu = self.cuda.device_facts(device)
        trt_version = str(self.trt.__version__)
        settings = BuildSettings(
            workspace_bytes=workspace_bytes,
            version_compatible=version_compatible,
            hardware_compatibility=hardware_compatibility,
            timing_cache_path=self.cache.timing_cache_path(trt_version, gpu[1]),
        )
        self.key = engine_key(manifest, precision, trt_version, gpu, self.profiles, settings)
        logger = self.trt.Logger(self.trt.Logger.WARNING)
        self.runtime = self.trt.Runtime(logger)
        if version_compatible:
            self.runtime.engine_host_code_allowed = True
        onnx_bytes = Path(onnx_path).read_bytes()

        def build() -> bytes:
            with ENGINE_BUILD_SECONDS.labels(model=manifest.name, precision=precision).time():
                return build_plan(self.trt, onnx_bytes, self.profiles, settings, self.key.stem(), emit)

        self.engine, self.outcome = self.cache.get_or_build(self.key, build, self._deserialize)
        if self.outcome.built:
            ENGINE_BUILDS.labels(model=manifest.name, precision=precision, why=self.outcome.reason).inc()
        self.device = device
        self.plan: list[BufferSpec] | None = None  # sized from the first execution context
        self._in_axes, self._out_axes = batch_axes(manifest)
        self.buckets = batch_buckets(self.max_batch) if self.max_batch else []
        self._local = threading.local()
        self._workers: list[_Worker] = []
        self._workers_lock = threading.Lock()

    def _deserialize(self, plan: bytes) -> Any:
        try:
            return self.runtime.deserialize_cuda_engine(plan)
        except Exception as exc:  # TensorRT raises on some corrupt plans instead of returning None
            log.warning("deserialising engine %s failed: %s", self.key.stem(), exc)
            return None

    def _plan_for(self, context: Any) -> list[BufferSpec]:
        """Buffer plan, computed once: outputs no input axis sizes are asked of the engine at the profile max."""
        if self.plan is None:

            def output_shape_at_max(name: str) -> tuple[int, ...]:
                for spec in self.manifest.inputs:
                    if not context.set_input_shape(spec.name, tuple(self.profiles[spec.name].max)):
                        raise FacestreamError(
                            f"TensorRT rejected the profile max shape of input {spec.name!r}"
                        )
                return tuple(context.get_tensor_shape(name))

            self.plan = plan_buffers(self.manifest, self.profiles, output_shape_at_max)
        return self.plan

    def _worker(self) -> _Worker:
        worker = getattr(self._local, "worker", None)
        if worker is None:
            self.cuda.set_device(self.device)  # the current device is per thread
            with self._workers_lock:
                worker = _Worker(self.engine, self.cuda, self._plan_for)
                self._workers.append(worker)
            self._local.worker = worker
        return worker

    def _pad_to_bucket(self, feeds: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int | None]:
        """Zero-pad the batch axis up to its bucket so a captured graph can be reused; returns the real batch."""
        if not self._in_axes:
            return feeds, None
        first = next(iter(self._in_axes))
        batch = feeds[first].shape[self._in_axes[first]]
        bucket = bucket_for(batch, self.buckets)
        if bucket == batch:
            return feeds, batch
        out = {}
        for name, arr in feeds.items():
            axis = self._in_axes.get(name)
            if axis is None:
                out[name] = arr
                continue
            pad = [(0, 0)] * arr.ndim
            pad[axis] = (0, bucket - batch)
            out[name] = np.pad(arr, pad)
        return out, batch

    def _enqueue(self, w: _Worker, shape_key: tuple) -> None:
        if not self.cuda_graphs or shape_key in w.no_graph:
            if not w.context.execute_async_v3(w.stream_handle):
                raise FacestreamError(f"TensorRT execute_async_v3 failed for {self.manifest.name!r}")
            return
        if shape_key in w.graphs:
            w.cuda.launch(w.graphs[shape_key][1], w.stream)
            return
        if not w.context.execute_async_v3(w.stream_handle):  # first run allocates; never capture it
            raise FacestreamError(f"TensorRT execute_async_v3 failed for {self.manifest.name!r}")
        if len(w.graphs) >= MAX_GRAPHS_PER_WORKER:
            w.no_graph.add(shape_key)
            return
        w.cuda.sync(w.stream)
        try:
            w.cuda.begin_capture(w.stream)
        except CudaError as exc:
            self._no_graph(w, shape_key, exc)
            return
        graph, error = None, None
        try:
            ok = w.context.execute_async_v3(w.stream_handle)
            if not ok:
                error = CudaError("execute_async_v3 failed during capture")
        finally:
            try:  # always end the capture, or the stream stays unusable
                graph = w.cuda.end_capture(w.stream)
            except CudaError as exc:
                error = error or exc
        if error is None:
            try:
                w.graphs[shape_key] = (graph, w.cuda.instantiate(graph))
                return
            except CudaError as exc:
                error = exc
        self._no_graph(w, shape_key, error)
        # The captured launch never ran; the warm-up run above already wrote this call's outputs.

    def _no_graph(self, w: _Worker, shape_key: tuple, error: Exception) -> None:
        log.warning(
            "CUDA graph capture for %s %s failed (%s); using plain enqueue",
            self.manifest.name,
            shape_key,
            error,
        )
        w.no_graph.add(shape_key)

    def _run_once(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        w = self._worker()
        real_batch = None
        if self.cuda_graphs and self.buckets:
            feeds, real_batch = self._pad_to_bucket(feeds)
        for name, arr in feeds.items():
            if not w.context.set_input_shape(name, tuple(arr.shape)):
                raise FacestreamError(
                    f"TensorRT rejected shape {list(arr.shape)} for input {name!r}: outside the profile"
                )
            buf = w.buffers[name]
            buf.array(arr.shape, arr.dtype)[...] = arr
            w.cuda.htod(buf.device, buf.host, arr.nbytes, w.stream)
        shape_key = tuple(tuple(a.shape) for a in feeds.values())
        self._enqueue(w, shape_key)
        outputs = {}
        for spec in self.manifest.outputs:
            shape = tuple(int(d) for d in w.context.get_tensor_shape(spec.name))
            buf = w.buffers[spec.name]
            view = buf.array(shape, np.dtype(spec.dtype))
            w.cuda.dtoh(buf.host, buf.device, view.nbytes, w.stream)
            outputs[spec.name] = view
        w.cuda.sync(w.stream)
        result = {}
        for name, view in outputs.items():
            axis = self._out_axes.get(name)
            if real_batch is not None and axis is not None and view.shape[axis] != real_batch:
                view = view[(slice(None),) * axis + (slice(0, real_batch),)]  # a view: one copy below
            result[name] = np.array(view)  # copy out of the pinned buffer the next call overwrites
        return result

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return run_in_chunks(self._run_once, feeds, self._in_axes, self._out_axes, self.max_batch)

    def close(self) -> None:
        with self._workers_lock:
            for w in self._workers:
                w.close()
            self._workers = []
        self._local = threading.local()
