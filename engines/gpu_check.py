"""Engine self-test: ``python -m facestream.engines.gpu_check`` or ``facestream engines selftest``.

On a GPU box with TensorRT: builds each store model (into a throwaway engine dir unless --engine-dir), compares
with ONNX Runtime, times batch 1/8/32, and exercises the cache (second load does not rebuild; a changed key
rebuilds; a corrupt plan rebuilds). On a GPU box without TensorRT: runs the cuda-python parts (device facts,
stream, pinned/device buffers, copies and their bandwidth, CUDA-graph capture of a copy) and lists what it
skipped. Without a GPU: says so and runs the ONNX Runtime part only (exit 0). Exit 1 when a check fails.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facestream.errors import FacestreamError

from .backends.select import gpu_status, tensorrt_status
from .compare import compare_outputs, random_inputs
from .manifest import Manifest, ProfileSpec
from .store import ModelStore

DEFAULT_BATCHES = (1, 8, 32)
COPY_BYTES = 64 << 20
MIN_COSINE = 0.999


@dataclass
class Report:
    rows: list[tuple[str, ...]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failures: int = 0

    def add(self, check: str, model: str, precision: str, batch: str, result: str, detail: str = "") -> None:
        self.rows.append((check, model, precision, batch, result, detail))
        if result == "FAIL":
            self.failures += 1

    def skip(self, what: str) -> None:
        self.skipped.append(what)

    def render(self) -> str:
        header = ("check", "model", "prec", "batch", "result", "detail")
        rows = [header, *self.rows]
        widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
        lines = []
        for r in rows:
            lines.append("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1])
            if r is header:
                lines.append("-" * (sum(widths) + 2 * len(widths) + 6))
        if self.skipped:
            lines.append("")
            lines.extend(f"skipped: {s}" for s in self.skipped)
        lines.append("")
        lines.append(f"{len(self.rows)} checks, {self.failures} failed")
        return "\n".join(lines)


def time_calls(fn: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    """Median wall time of ``fn`` in seconds."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _timing_rows(
    report: Report, check: str, manifest: Manifest, precision: str, run, batches, repeats
) -> None:
    for batch in batches:
        feeds = random_inputs(manifest, batch=batch, seed=batch)
        try:
            sec = time_calls(lambda f=feeds: run(f), repeats)
        except Exception as exc:  # a timing that cannot run is a finding, not a crash
            report.add(check, manifest.name, precision, str(batch), "FAIL", f"{type(exc).__name__}: {exc}")
            continue
        report.add(
            check,
            manifest.name,
            precision,
            str(batch),
            "ok",
            f"{sec * 1e3:.3f} ms/call, {batch / sec:.0f} items/s",
        )


def _diff_row(
    report: Report, check: str, manifest: Manifest, precision: str, ref, got, min_cos: float
) -> None:
    for d in compare_outputs(ref, got):
        result = "ok" if d.cosine >= min_cos and np.isfinite(d.max_abs) else "FAIL"
        report.add(
            check,
            manifest.name,
            precision,
            "8",
            result,
            f"{d.name}: max|err| {d.max_abs:.3g}, cos {d.cosine:.6f}",
        )


def precisions_of(manifest: Manifest) -> list[str]:
    return [manifest.precision, *sorted(manifest.variants)]


def onnxruntime_part(report: Report, store: ModelStore, batches, repeats: int, threads: int | None) -> None:
    from .backends.onnxruntime_backend import OnnxRuntimeBackend

    for entry in store.list():
        m = entry.manifest
        outputs = {}
        for precision in precisions_of(m):
            backend = OnnxRuntimeBackend(entry.onnx_path(precision), m, intra_op_threads=threads)
            outputs[precision] = backend.run(random_inputs(m, batch=8, seed=8))
            _timing_rows(report, "onnxruntime time", m, precision, backend.run, batches, repeats)
        for precision in precisions_of(m)[1:]:
            _diff_row(report, "ort vs ort-fp32", m, precision, outputs[m.precision], outputs[precision], 0.99)


def cuda_part(report: Report) -> None:
    """cuda-python alone: facts, a stream, pinned + device buffers, copies (checked byte for byte), a graph."""
    from .trt.cuda import Cuda, CudaError, PinnedBuffer

    cuda = Cuda()
    name, cc = cuda.device_facts(0)
    report.add("cuda device", "-", "-", "-", "ok", f"{cuda.device_count()} device(s); #0 {name}, sm {cc}")
    stream = cuda.stream()
    a, b = PinnedBuffer(cuda, COPY_BYTES), PinnedBuffer(cuda, COPY_BYTES)
    try:
        data = np.random.default_rng(0).integers(0, 255, COPY_BYTES, dtype=np.uint8)
        a.view[:] = data
        b.view[:] = 0
        cuda.htod(a.device, a.host, COPY_BYTES, stream)
        cuda.dtod(b.device, a.device, COPY_BYTES, stream)
        cuda.dtoh(b.host, b.device, COPY_BYTES, stream)
        cuda.sync(stream)
        same = bool(np.array_equal(b.view, data))
        report.add(
            "cuda copies", "-", "-", "-", "ok" if same else "FAIL", "pinned->device->device->pinned 64 MiB"
        )
        for label, fn in (
            ("cuda htod", lambda: cuda.htod(a.device, a.host, COPY_BYTES, stream)),
            ("cuda dtoh", lambda: cuda.dtoh(b.host, b.device, COPY_BYTES, stream)),
        ):

            def once(fn=fn) -> None:
                fn()
                cuda.sync(stream)

            sec = time_calls(once, 10)
            report.add(
                label,
                "-",
                "-",
                "-",
                "ok",
                f"{COPY_BYTES / sec / 1e9:.1f} GB/s (64 MiB, pinned, median of 10)",
            )
        try:
            b.view[:] = 0
            cuda.sync(stream)
            cuda.begin_capture(stream)
            cuda.dtoh(b.host, a.device, COPY_BYTES, stream)
            graph = cuda.end_capture(stream)
            graph_exec = cuda.instantiate(graph)
            cuda.launch(graph_exec, stream)
            cuda.sync(stream)
            cuda.destroy_graph(graph, graph_exec)
            ok = bool(np.array_equal(b.view, data))
            report.add("cuda graph", "-", "-", "-", "ok" if ok else "FAIL", "captured a copy, replayed it")
        except CudaError as exc:
            report.add("cuda graph", "-", "-", "-", "FAIL", str(exc))
    finally:
        a.free()
        b.free()
        cuda.destroy_stream(stream)


def _changed_profile(manifest: Manifest, profiles: dict[str, ProfileSpec]) -> Manifest:
    """Same model, opt shape moved to min: a different cache key that still builds."""
    moved = {n: ProfileSpec(min=p.min, opt=p.min, max=p.max) for n, p in profiles.items()}
    if moved == profiles:
        moved = {n: ProfileSpec(min=p.min, opt=p.max, max=p.max) for n, p in profiles.items()}
    return manifest.model_copy(update={"profiles": moved})


def tensorrt_part(report: Report, store: ModelStore, engine_dir: Path, batches, repeats: int, emit) -> None:
    from .backends.onnxruntime_backend import OnnxRuntimeBackend
    from .backends.tensorrt_backend import TensorRTBackend
    from .trt.profiles import derive_profiles

    for entry in store.list():
        m = entry.manifest
        for precision in precisions_of(m):
            path = entry.onnx_path(precision)

            def load(manifest: Manifest = m, p: str = precision, path: Path = path) -> TensorRTBackend:
                return TensorRTBackend(path, manifest, precision=p, engine_dir=engine_dir, emit=emit)

            try:
                start = time.monotonic()
                first = load()
                first_s = time.monotonic() - start
                report.add(
                    "trt first load",
                    m.name,
                    precision,
                    "-",
                    "ok",
                    f"built={first.outcome.built} in {first_s:.1f}s",
                )
                second = load()
                ok = not second.outcome.built
                report.add(
                    "trt cache hit", m.name, precision, "-", "ok" if ok else "FAIL", second.outcome.reason
                )
                changed = load(_changed_profile(m, derive_profiles(m)))
                ok = changed.outcome.built and changed.key.digest() != second.key.digest()
                report.add(
                    "trt changed key", m.name, precision, "-", "ok" if ok else "FAIL", changed.outcome.reason
                )
                changed.close()
                plan = first.outcome.plan_path
                plan.write_bytes(plan.read_bytes()[: max(1, plan.stat().st_size // 2)])
                again = load()
                ok = again.outcome.built
                report.add(
                    "trt corrupt plan", m.name, precision, "-", "ok" if ok else "FAIL", again.outcome.reason
                )
                again.close()
                first.close()
                ort = OnnxRuntimeBackend(path, m)
                feeds = random_inputs(m, batch=8, seed=8)
                min_cos = MIN_COSINE if precision == "fp32" else 0.99
                _diff_row(report, "trt vs ort", m, precision, ort.run(feeds), second.run(feeds), min_cos)
                _timing_rows(report, "tensorrt time", m, precision, second.run, batches, repeats)
                second.close()
            except FacestreamError as exc:
                report.add("trt", m.name, precision, "-", "FAIL", str(exc))


def run_selftest(
    store: ModelStore,
    engine_dir: Path | None,
    batches=DEFAULT_BATCHES,
    repeats: int = 20,
    threads: int | None = None,
    emit=print,
) -> Report:
    report = Report()
    n_gpu, gpu_why = gpu_status()
    trt_ok, trt_why = tensorrt_status()
    report.add("gpu", "-", "-", "-", "ok" if n_gpu else "none", gpu_why)
    report.add("tensorrt", "-", "-", "-", "ok" if trt_ok else "none", trt_why)
    names = store.names()
    if not names:
        report.skip(f"every model check: the model store {store.root} is empty")
    else:
        onnxruntime_part(report, store, batches, repeats, threads)
    if not n_gpu:
        report.skip(
            f"all GPU checks (cuda-python buffers/streams/copies, TensorRT build, cache, compare): {gpu_why}"
        )
        return report
    try:
        cuda_part(report)
    except Exception as exc:  # report what broke and carry on to the summary
        report.add("cuda", "-", "-", "-", "FAIL", f"{type(exc).__name__}: {exc}")
    if not trt_ok:
        report.skip(
            "TensorRT build, engine cache exercise (hit / changed key / corrupt plan), TensorRT vs ONNX Runtime "
            f"comparison and TensorRT timings: {trt_why}"
        )
        return report
    if names:
        if engine_dir is None:
            with tempfile.TemporaryDirectory(prefix="facestream-selftest-") as tmp:
                tensorrt_part(report, store, Path(tmp), batches, repeats, emit)
        else:
            tensorrt_part(report, store, engine_dir, batches, repeats, emit)
    return report


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--store", type=Path, help="model store (default $FACESTREAM_MODELS or ~/.cache/facestream/models)"
    )
    p.add_argument(
        "--engine-dir",
        type=Path,
        help="engine dir to build into (default: a temporary one, so the cache test "
        "never damages your real cache)",
    )
    p.add_argument("--batches", default=",".join(map(str, DEFAULT_BATCHES)), help="batch sizes to time")
    p.add_argument("--repeats", type=int, default=20, help="timed calls per batch size (median reported)")
    p.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads")


def run_from_args(args: argparse.Namespace) -> int:
    try:
        batches = tuple(int(b) for b in args.batches.split(","))
    except ValueError as exc:
        raise FacestreamError(f"--batches must be comma-separated integers, got {args.batches!r}") from exc
    report = run_selftest(ModelStore(args.store), args.engine_dir, batches, args.repeats, args.threads)
    print(report.render())
    return 1 if report.failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m facestream.engines.gpu_check", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_from_args(args)
    except FacestreamError as exc:
        print(f"gpu_check: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
