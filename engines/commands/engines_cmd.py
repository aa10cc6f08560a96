"""``facestream engines build|list|verify|clean|selftest``: the TensorRT engine cache from the command line.

build   prebuild engines for store models (``--all`` for a deployment), with progress lines
list    every cached engine: model, precision, TensorRT version, GPU, size, key digest
verify  TensorRT vs ONNX Runtime (or, without TensorRT, FP16 vs FP32 on ONNX Runtime) on random and real
        inputs: max abs error and cosine similarity per output
clean   delete cached engines (one model or all; timing caches stay)
selftest  the GPU self-test (facestream.engines.gpu_check)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from facestream.errors import FacestreamError

from ..backends.select import select_backend, tensorrt_status
from ..compare import compare_outputs, random_inputs, real_image_inputs
from ..store import ModelStore
from ..trt.cache import EngineCache
from ..trt.profiles import ProfileConfig, parse_dim_option

DEFAULT_MIN_COSINE = 0.99


def _emit(line: str) -> None:
    print(line, flush=True)


def _profile_config(args: argparse.Namespace) -> ProfileConfig:
    dims = dict(parse_dim_option(d) for d in args.dim or [])
    batch = dims.pop("batch", None)
    seq = dims.pop("seq", None)
    base = ProfileConfig()
    return ProfileConfig(batch=batch or base.batch, seq=seq or base.seq, dims=dims)


def _precisions(manifest, wanted: str) -> list[str]:
    have = [manifest.precision, *sorted(manifest.variants)]
    if wanted == "all":
        return have
    if wanted not in have:
        raise FacestreamError(f"model {manifest.name!r} has no {wanted} variant (has: {', '.join(have)})")
    return [wanted]


def _trt_options(args: argparse.Namespace) -> dict:
    return {
        "engine_dir": args.engine_dir,
        "profile_config": _profile_config(args),
        "workspace_bytes": args.workspace_mib << 20,
        "version_compatible": args.version_compatible,
        "hardware_compatibility": args.hardware_compat,
    }


def _build(args: argparse.Namespace) -> int:
    from ..backends.tensorrt_backend import TensorRTBackend

    store = ModelStore(args.store)
    names = store.names() if args.all else args.models
    if not names:
        raise FacestreamError("name models to build, or pass --all for every model in the store")
    select_backend("tensorrt")  # a clear error on a box without TensorRT or GPU
    failed = 0
    for name in names:
        entry = store.get(name) if store.has(name) else None
        if entry is None:
            raise FacestreamError(f"model {name!r} is not in the store {store.root}")
        for precision in _precisions(entry.manifest, args.precision):
            start = time.monotonic()
            try:
                backend = TensorRTBackend(
                    entry.onnx_path(precision),
                    entry.manifest,
                    precision=precision,
                    emit=_emit,
                    **_trt_options(args),
                )
            except FacestreamError as exc:
                print(f"{name} {precision}: FAILED: {exc}", flush=True)
                failed += 1
                continue
            o = backend.outcome
            what = f"built ({o.reason})" if o.built else "already cached"
            print(
                f"{name} {precision}: {what} in {time.monotonic() - start:.1f}s -> {o.plan_path}", flush=True
            )
            backend.close()
    return 1 if failed else 0


def _list(args: argparse.Namespace) -> int:
    cache = EngineCache(args.engine_dir)
    entries = cache.entries()
    if not entries:
        print(f"no engines in {cache.root}")
        return 0
    print(f"engines in {cache.root}:")
    rows = [("model", "prec", "tensorrt", "gpu", "sm", "MiB", "key", "built")]
    for e in entries:
        s = e.sidecar or {}
        k = s.get("key", {})
        rows.append(
            (
                s.get("model", e.stem.split(".")[0]),
                k.get("precision", "?"),
                k.get("trt_version", "?"),
                k.get("gpu_name", "?"),
                k.get("compute_capability", "?"),
                f"{e.plan_bytes / 2**20:.1f}",
                s.get("digest", "no sidecar (will be rebuilt)")[:16],
                s.get("built_at", "?"),
            )
        )
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    if args.keys:
        for e in entries:
            print(f"{e.stem}: {(e.sidecar or {}).get('key')}")
    return 0


def _print_diffs(label: str, diffs, min_cos: float) -> bool:
    ok = True
    for d in diffs:
        good = d.cosine >= min_cos
        ok &= good
        print(
            f"  {label:<8} {d.name:<24} max|err| {d.max_abs:<10.3g} cosine {d.cosine:.6f}{'' if good else '  LOW'}"
        )
    return ok


def _verify(args: argparse.Namespace) -> int:
    from ..backends.onnxruntime_backend import OnnxRuntimeBackend

    store = ModelStore(args.store)
    if not store.has(args.model):
        raise FacestreamError(f"model {args.model!r} is not in the store {store.root}")
    entry = store.get(args.model)
    m = entry.manifest
    trt_ok, why = tensorrt_status()
    if trt_ok:
        from ..backends.tensorrt_backend import TensorRTBackend

        precision = args.precision or m.precision
        reference = OnnxRuntimeBackend(entry.onnx_path(precision), m)
        other = TensorRTBackend(
            entry.onnx_path(precision), m, precision=precision, emit=_emit, **_trt_options(args)
        )
        print(f"{m.name}: TensorRT ({precision}) vs ONNX Runtime ({precision})")
    else:
        if "fp16" not in m.variants and m.precision != "fp16":
            raise FacestreamError(
                f"TensorRT is not available here ({why}) and {m.name!r} has no fp16 variant to compare with fp32"
            )
        reference = OnnxRuntimeBackend(entry.onnx_path("fp32"), m)
        other = OnnxRuntimeBackend(entry.onnx_path("fp16"), m)
        print(
            f"{m.name}: TensorRT is not available here ({why}); comparing FP16 with FP32 on ONNX Runtime instead"
        )
    ok = True
    for seed in range(args.random):
        feeds = random_inputs(m, batch=args.batch, seed=seed)
        ok &= _print_diffs(
            f"random{seed}", compare_outputs(reference.run(feeds), other.run(feeds)), args.min_cosine
        )
    if args.real:
        feeds = real_image_inputs(m, args.real)
        if feeds is None:
            print(
                f"  real     skipped: no images under {args.real} or {m.name!r} takes no fixed-size image input"
            )
        else:
            ok &= _print_diffs(
                "real", compare_outputs(reference.run(feeds), other.run(feeds)), args.min_cosine
            )
    print("verify: ok" if ok else f"verify: cosine below {args.min_cosine} for some output")
    return 0 if ok else 1


def _clean(args: argparse.Namespace) -> int:
    cache = EngineCache(args.engine_dir)
    if args.model is None and not args.yes:
        raise FacestreamError(f"this removes every engine in {cache.root}: add --yes, or name a model")
    removed = cache.remove(args.model)
    plans = [p for p in removed if p.suffix == ".plan"]
    print(f"removed {len(plans)} engine(s) from {cache.root}")
    return 0


def _selftest(args: argparse.Namespace) -> int:
    from .. import gpu_check

    return gpu_check.run_from_args(args)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--store", type=Path, help="model store (default $FACESTREAM_MODELS or ~/.cache/facestream/models)"
    )
    p.add_argument(
        "--engine-dir",
        type=Path,
        help="engine cache (default $FACESTREAM_ENGINES or ~/.cache/facestream/engines)",
    )


def _build_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dim",
        action="append",
        metavar="NAME=MIN:OPT:MAX",
        help="profile range for a dynamic axis the manifest has no profile for (batch=1:8:32, seq=1:16:64)",
    )
    p.add_argument("--workspace-mib", type=int, default=1024, help="TensorRT workspace limit (default 1024)")
    p.add_argument(
        "--version-compatible",
        action="store_true",
        help="plans that load on later TensorRT versions (needs engine host code allowed; may be slower)",
    )
    p.add_argument(
        "--hardware-compat",
        choices=("none", "ampere_plus", "same_compute_capability"),
        default="none",
        help="plans that load on other GPUs of that class (may be slower)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    eng = subparsers.add_parser("engines", help="TensorRT engine cache: build, list, verify, clean, selftest")
    sub = eng.add_subparsers(dest="engines_command", metavar="ACTION", required=True)

    build = sub.add_parser("build", help="build (or confirm cached) TensorRT engines for store models")
    build.add_argument("models", nargs="*", help="model names")
    build.add_argument("--all", action="store_true", help="every model in the store (prebuild a deployment)")
    build.add_argument("--precision", default="all", help="fp32, fp16, ... or all variants (default all)")
    _common(build)
    _build_options(build)
    build.set_defaults(func=_build)

    lst = sub.add_parser("list", help="cached engines with their key and size")
    lst.add_argument("--keys", action="store_true", help="also print each engine's full key")
    _common(lst)
    lst.set_defaults(func=_list)

    verify = sub.add_parser(
        "verify", help="compare TensorRT with ONNX Runtime (FP16 with FP32 without TensorRT)"
    )
    verify.add_argument("model")
    verify.add_argument("--precision", help="variant to verify on TensorRT (default: the manifest's)")
    verify.add_argument("--batch", type=int, default=8, help="random batch size (default 8)")
    verify.add_argument("--random", type=int, default=2, help="random batches (default 2)")
    verify.add_argument("--real", type=Path, help="folder of face images to use as real inputs")
    verify.add_argument(
        "--min-cosine", type=float, default=DEFAULT_MIN_COSINE, help="fail below this (default 0.99)"
    )
    _common(verify)
    _build_options(verify)
    verify.set_defaults(func=_verify)

    clean = sub.add_parser("clean", help="delete cached engines (timing caches stay)")
    clean.add_argument("model", nargs="?", help="only this model's engines")
    clean.add_argument("--yes", action="store_true", help="confirm removing every engine")
    _common(clean)
    clean.set_defaults(func=_clean)

    from .. import gpu_check

    selftest = sub.add_parser("selftest", help="GPU self-test: build, compare, time, exercise the cache")
    gpu_check.add_arguments(selftest)
    # its engine dir defaults to a temporary one, never the deployment's cache (engines.engine_dir)
    selftest.set_defaults(func=_selftest, config_skips=("engine_dir",))


if __name__ == "__main__":
    sys.exit("run as: facestream engines ...")
