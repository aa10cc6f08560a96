"""Prometheus metrics of the pipeline stages, and the per-stage /metrics endpoint.

Each stage is its own process, so each has its own default registry; the ``stage`` label keeps series apart
when one Prometheus scrapes all four. docs/metrics.md has one row per metric.
"""

from __future__ import annotations

import logging
from pathlib import Path

from prometheus_client import Counter, Gauge, Histogram, Info, start_http_server

from facestream import __version__
from facestream.fsutil import atomic_write

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

FRAMES_IN = Counter("facestream_frames_in_total", "Frames received by a stage", ["stage", "stream"])
FRAMES_OUT = Counter("facestream_frames_out_total", "Frames (or results) sent on by a stage", ["stage", "stream"])
FRAMES_DROPPED = Counter(
    "facestream_frames_dropped_total", "Frames dropped by a stage, by reason", ["stage", "stream", "reason"]
)
FRAMES_LOST = Counter(
    "facestream_frames_lost_total",
    "Frames that never reached the sink and that no stage reported dropping (lost in flight, e.g. a stage crash)",
    ["stream"],
)
PROCESSING_SECONDS = Histogram(
    "facestream_stage_processing_seconds", "Time a stage spends on one message", ["stage"], buckets=LATENCY_BUCKETS
)
CAPTURE_TO_STAGE_SECONDS = Histogram(
    "facestream_capture_to_stage_seconds",
    "Latency from capture (wall clock) to a stage finishing its work on the frame",
    ["stage"],
    buckets=LATENCY_BUCKETS,
)
QUEUE_DEPTH = Gauge("facestream_queue_depth", "Frames waiting inside a stage", ["stage"])
MESSAGES_REJECTED = Counter(
    "facestream_messages_rejected_total", "Messages the wire decoder rejected, by reason", ["stage", "reason"]
)
PEER_UP = Gauge("facestream_peer_up", "1 while a neighbouring stage is heard from (heartbeats)", ["stage", "peer"])
HEARTBEATS_MISSED = Counter(
    "facestream_heartbeats_missed_total", "Times a peer went silent past the timeout", ["stage", "peer"]
)
STAGE_UP = Gauge("facestream_stage_up", "1 while the stage's main loop runs", ["stage"])
STAGE_RESTARTS = Counter("facestream_stage_restarts_total", "Stage restarts by the supervisor", ["stage"])
FACES_DETECTED = Counter("facestream_faces_detected_total", "Faces detected", ["stream"])
FACES_IDENTIFIED = Counter(
    "facestream_faces_identified_total", "Track identifications emitted, known people vs unknown faces",
    ["stream", "kind"],
)
SINK_EVENTS = Counter("facestream_sink_events_written_total", "Records written by the sink", ["kind"])
SINK_WRITE_ERRORS = Counter(
    "facestream_sink_write_errors_total", "Records the sink could not write (disk full, bad path)", ["reason"]
)
WEB_REJECTED = Counter(
    "facestream_web_rejected_total",
    "Requests and live-view messages the web app refused, by reason", ["reason"],
)
BUILD_INFO = Info("facestream_build", "facestream version")


def serve_metrics(stage: str, host: str, port: int, run_dir: Path | None) -> str | None:
    """Start the /metrics endpoint; returns its URL and writes it to run_dir/metrics-STAGE.url."""
    BUILD_INFO.info({"version": __version__})
    STAGE_UP.labels(stage).set(0)
    try:
        result = start_http_server(port, addr=host)
    except OSError as exc:
        log.error("%s: metrics endpoint %s:%s unavailable: %s (stage runs without it)", stage, host, port, exc)
        return None
    actual = port
    if isinstance(result, tuple) and result and hasattr(result[0], "server_port"):
        actual = result[0].server_port
    url = f"http://{host}:{actual}/metrics"
    if run_dir is not None:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write(run_dir / f"metrics-{stage}.url", url + "\n")
        except OSError:
            pass
    return url
