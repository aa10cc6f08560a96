"""Prometheus metrics of the engines layer (default registry, created once at import)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

INFER_SECONDS = Histogram(
    "facestream_engine_infer_seconds",
    "Wall time of one InferenceModel.infer call (validation excluded)",
    ["model", "backend"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
)
BATCH_SIZE = Histogram(
    "facestream_engine_batch_size",
    "Items (batch dimension) per infer call",
    ["model", "backend"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
BACKEND_INFO = Gauge(
    "facestream_engine_backend_info",
    "1 for the backend each loaded model runs on, with the reason it was chosen",
    ["model", "backend", "reason"],
)
ENGINE_BUILDS = Counter(
    "facestream_engine_builds_total",
    "TensorRT engines built (cache misses, changed keys, corrupt plans)",
    ["model", "precision", "why"],
)
ENGINE_BUILD_SECONDS = Histogram(
    "facestream_engine_build_seconds",
    "Wall time of one TensorRT engine build",
    ["model", "precision"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 2400, 3600),
)
