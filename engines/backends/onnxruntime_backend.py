"""ONNX Runtime backend, tuned for small CPUs: fixed thread counts, full graph optimisation, sequential run.

IO binding is used on GPU providers (outputs stay bound, no per-call allocation on the device); on the CPU
provider it is off by default because ``run`` is already zero-copy for contiguous inputs.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from facestream.errors import FacestreamError

from ..manifest import Manifest
from .batching import batch_axes, run_in_chunks

DEFAULT_MAX_INTRA_THREADS = 4


def default_intra_threads() -> int:
    """Half the cores, at most 4: capture, preprocessing and the sink run in other processes on the same box.

    bench/bench_engines.py on a shared 2-core box: the embedder ran faster on 1 thread than on 2.
    """
    return max(1, min(DEFAULT_MAX_INTRA_THREADS, (os.cpu_count() or 1) // 2))


def session_options(intra_op_threads: int | None, inter_op_threads: int | None, allow_spinning: bool):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = intra_op_threads if intra_op_threads is not None else default_intra_threads()
    opts.inter_op_num_threads = inter_op_threads if inter_op_threads is not None else 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Busy-waiting worker threads burn the cores that capture and preprocessing need on an edge box.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
    return opts


class OnnxRuntimeBackend:
    """Runs one ONNX file; splits batches larger than ``max_batch`` into chunks."""

    name = "onnxruntime"

    def __init__(
        self,
        onnx_path: Path,
        manifest: Manifest,
        intra_op_threads: int | None = None,
        inter_op_threads: int | None = None,
        io_binding: bool | None = None,
        max_batch: int | None = None,
        providers: list[str] | None = None,
        allow_spinning: bool = False,
    ):
        import onnxruntime as ort

        self.manifest = manifest
        self.max_batch = max_batch
        opts = session_options(intra_op_threads, inter_op_threads, allow_spinning)
        available = ort.get_available_providers()
        wanted = providers or ["CPUExecutionProvider"]
        missing = [p for p in wanted if p not in available]
        if missing:
            raise FacestreamError(f"ONNX Runtime providers {missing} are not available (have {available})")
        try:
            self.session = ort.InferenceSession(str(onnx_path), sess_options=opts, providers=wanted)
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise FacestreamError(
                f"ONNX Runtime cannot load {onnx_path}: {str(exc).splitlines()[0]}"
            ) from exc
        self.providers = self.session.get_providers()
        self.io_binding = (
            io_binding if io_binding is not None else self.providers[0] != "CPUExecutionProvider"
        )
        self.output_names = [o.name for o in self.session.get_outputs()]
        self._in_axes, self._out_axes = batch_axes(manifest)

    def _run_once(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if not self.io_binding:
            values = self.session.run(self.output_names, feeds)
            return dict(zip(self.output_names, values, strict=True))
        binding = self.session.io_binding()
        for name, arr in feeds.items():
            binding.bind_cpu_input(name, arr)
        for name in self.output_names:
            binding.bind_output(name)
        self.session.run_with_iobinding(binding)
        return dict(zip(self.output_names, binding.copy_outputs_to_cpu(), strict=True))

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return run_in_chunks(self._run_once, feeds, self._in_axes, self._out_axes, self.max_batch)

    def close(self) -> None:
        self.session = None
