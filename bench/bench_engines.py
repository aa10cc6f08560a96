"""ONNX Runtime backend settings on this CPU: threads, IO binding and thread spinning, per batch size.

Runs the dlib face embedder (and one detector image) through ``engines.runtime.load_model`` so the numbers
include input validation and metrics, as the pipeline sees them. Models come from ``--store``; when it has no
dlib models they are imported into a temporary store (face_recognition_models ships the weights).

    python bench/bench_engines.py [--store DIR] [--repeats 10]

Writes bench/results/engines_onnxruntime.md and .json. Other processes on the box add noise: compare rows
of one run, not runs on different days.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from facestream.engines.faces.vectors import CHIP_SIZE  # noqa: E402
from facestream.engines.runtime import load_model  # noqa: E402
from facestream.engines.store import ModelStore  # noqa: E402

RESULTS = ROOT / "bench" / "results"
EMBEDDER, DETECTOR = "dlib-resnet-embedder", "dlib-mmod-detector"
SETTINGS = [  # (label, backend options)
    ("1 thread", {"intra_op_threads": 1}),
    ("2 threads", {"intra_op_threads": 2}),
    ("2 threads + io_binding", {"intra_op_threads": 2, "io_binding": True}),
    ("2 threads + spinning", {"intra_op_threads": 2, "allow_spinning": True}),
]


def median_seconds(fn, repeats: int) -> float:
    fn()
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def ensure_store(path: Path | None, tmp: str) -> ModelStore:
    store = ModelStore(path) if path else ModelStore(Path(tmp) / "models")
    if not (store.has(EMBEDDER) and store.has(DETECTOR)):
        from facestream.engines.dlib_import import import_dlib_models

        store = ModelStore(Path(tmp) / "models")
        import_dlib_models(store)
    return store


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = ensure_store(args.store, tmp)
        rng = np.random.default_rng(0)
        for label, opts in SETTINGS:
            for precision in ("fp32", "fp16"):
                model = load_model(EMBEDDER, backend="onnxruntime", precision=precision, store=store, **opts)
                for batch in (1, 8, 32):
                    x = rng.uniform(0, 255, (batch, 3, CHIP_SIZE, CHIP_SIZE)).astype(np.float32)
                    sec = median_seconds(lambda m=model, x=x: m.infer(x), args.repeats)
                    rows.append((EMBEDDER, precision, label, batch, sec))
                    print(
                        f"{EMBEDDER:22s} {precision} {label:24s} b{batch:<3d} {sec * 1e3:9.2f} ms  {batch / sec:7.1f} faces/s"
                    )
        image = rng.uniform(0, 255, (1, 3, 480, 640)).astype(np.float32)
        for label, opts in SETTINGS[:2]:
            model = load_model(DETECTOR, backend="onnxruntime", store=store, **opts)
            sec = median_seconds(lambda m=model: m.infer(image), max(2, args.repeats // 3))
            rows.append((DETECTOR + " 640x480", "fp32", label, 1, sec))
            print(f"{DETECTOR:22s} fp32 {label:24s} b1   {sec * 1e3:9.2f} ms")
    RESULTS.mkdir(parents=True, exist_ok=True)
    host = {"cpu_count": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version()}
    (RESULTS / "engines_onnxruntime.json").write_text(
        json.dumps(
            {
                "host": host,
                "rows": [
                    dict(zip(("model", "precision", "setting", "batch", "seconds"), r, strict=True))
                    for r in rows
                ],
            },
            indent=2,
        )
    )
    lines = [
        "# ONNX Runtime settings (bench/bench_engines.py)",
        "",
        f"Host: {host['cpu_count']} CPUs, {host['machine']}, Python {host['python']}; median of "
        f"{args.repeats} calls through load_model().infer.",
        "",
        "| model | precision | setting | batch | ms/call | items/s |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {m} | {p} | {s} | {b} | {sec * 1e3:.2f} | {b / sec:.1f} |" for m, p, s, b, sec in rows]
    (RESULTS / "engines_onnxruntime.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS / 'engines_onnxruntime.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
