"""Prometheus metrics of the pipeline stages, and the per-stage /metrics endpoint.

Each stage is its own process, so each has its own default registry; the ``stage`` label keeps series apart
when one Prometheus scrapes all four. docs/metrics.md has one row per metric.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
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
PREVIEW_FRAMES = Counter(
    "facestream_preview_frames_total", "Annotated JPEG frames the sink published for the live view", ["stream"]
)
INTEGRATION_SENT = Counter(
    "facestream_integration_sent_total", "Messages an integration delivered (MQTT: acknowledged; NATS: PubAck; webhook: 2xx)",
    ["integration"],
)
INTEGRATION_DROPPED = Counter(
    "facestream_integration_dropped_total",
    "Messages an integration gave up on, by reason (NATS, webhooks: each one is in the dead-letter file)",
    ["integration", "reason"],
)
INTEGRATION_RETRIES = Counter(
    "facestream_integration_retries_total", "Webhook or NATS deliveries retried after a failed attempt", ["integration"]
)
INTEGRATION_UP = Gauge(
    "facestream_integration_up", "1 while an integration's peer is reachable (MQTT/NATS connected, last POST ok)",
    ["integration"],
)
INTEGRATION_QUEUED = Gauge(
    "facestream_integration_queued", "Messages waiting in an integration's bounded queue", ["integration"]
)
WEB_REJECTED = Counter(
    "facestream_web_rejected_total",
    "Requests and live-view messages the web app refused, by reason", ["reason"],
)
BUILD_INFO = Info("facestream_build", "facestream version")

# --- label values known at start (init_series) ---------------------------------------------------------------

STAGE_ORDER = ("capture", "preprocess", "inference", "sink")
# Why a stage drops a frame (DropBooks reasons): latest-frame queue (stale), camera skipped frames (source_behind),
# full hop (backpressure), stop (shutdown), process() raised (error), unusable pixels (bad_image), payload refused
# by the decoder (rejected), shared-memory slot overwritten (shm_overrun).
DROP_REASONS: dict[str, tuple[str, ...]] = {
    "capture": ("stale", "source_behind", "backpressure", "shutdown"),
    "preprocess": ("stale", "backpressure", "shutdown", "error", "bad_image", "rejected", "shm_overrun"),
    "inference": ("stale", "backpressure", "shutdown", "error", "bad_image", "rejected", "shm_overrun"),
    "sink": ("stale", "shutdown", "error", "bad_image", "rejected", "shm_overrun"),
}
# Every reason the wire decoder and the inlet reject a message for (tests/deploy/test_metrics_init.py keeps the
# list complete).
REJECT_REASONS = (
    "bad_dtype", "bad_encoding", "bad_event", "bad_face", "bad_field", "bad_header", "bad_jpeg", "bad_meta",
    "bad_shape", "bad_shm", "bad_size", "bad_stream_id", "bad_type", "bad_version", "internal", "missing_field",
    "no_parts", "other_run", "oversized", "part_count", "shm_over_tcp", "too_many_parts", "truncated", "unknown_stream",
)
SINK_WRITE_ERROR_REASONS = (
    "disk_full", "permission", "read_only", "io_error", "stdout", "pub_full", "summary", "video", "events_db",
    "frame", "preview_full", "crop",
)
SINK_EVENT_KINDS = ("result", "event", "event_db", "frame", "crop")
IDENTIFIED_KINDS = ("known", "unknown")


def init_series(stage: str, streams: Sequence[str]) -> None:
    """Create, at 0, every series whose label values ``stage`` knows at start (its streams, peers, reasons).

    A labelled prometheus_client metric has no series until ``.labels()`` is first called: without this,
    "nothing happened yet" reads as "no data" on the dashboard, and the first event is invisible to
    ``rate()``/``increase()`` and the alerts built on them (a series that appears at 1 has nothing to rise
    from). Series already set keep their value.
    """
    pos = STAGE_ORDER.index(stage) if stage in STAGE_ORDER else -1
    STAGE_RESTARTS.labels(stage)
    for stream in streams:
        FRAMES_IN.labels(stage, stream)
        FRAMES_OUT.labels(stage, stream)
        for reason in DROP_REASONS.get(stage, ()):
            FRAMES_DROPPED.labels(stage, stream, reason)
    if pos > 0:  # a stage with an input socket
        HEARTBEATS_MISSED.labels(stage, STAGE_ORDER[pos - 1])
        for reason in REJECT_REASONS:
            MESSAGES_REJECTED.labels(stage, reason)
        from .security import AUTH_FAILURES

        AUTH_FAILURES.labels(stage)  # without CURVE no peer is refused: 0 is the true count
    if 0 <= pos < len(STAGE_ORDER) - 1:
        HEARTBEATS_MISSED.labels(stage, STAGE_ORDER[pos + 1])
    if stage == "capture":
        _init_sources(streams)
    elif stage == "inference":
        _init_recognition(streams)
    elif stage == "sink":
        for kind in SINK_EVENT_KINDS:
            SINK_EVENTS.labels(kind)
        for reason in SINK_WRITE_ERROR_REASONS:
            SINK_WRITE_ERRORS.labels(reason)
        for stream in streams:
            FRAMES_LOST.labels(stream)
            PREVIEW_FRAMES.labels(stream)


def _init_sources(streams: Sequence[str]) -> None:
    from .sources import metrics as sm

    for stream in streams:
        for counter in (sm.FRAMES, sm.DROPPED, sm.RECONNECTS, sm.STALLS, sm.DECODE_ERRORS, sm.RESOLUTION_CHANGES,
                        sm.SKIPPED_FILES):
            counter.labels(stream)
        sm.UP.labels(stream).set(0)  # before the readers start: a camera that never opens reads down, not absent


def _init_recognition(streams: Sequence[str]) -> None:
    from .recognition import recognizer_metrics as rm
    from .recognition import scheduler
    from .recognition.events import EventKind

    for stream in streams:
        FACES_DETECTED.labels(stream)
        for kind in IDENTIFIED_KINDS:
            FACES_IDENTIFIED.labels(stream, kind)
        rm.ACTIVE_TRACKS.labels(stream).set(0)
    for kind in EventKind:
        rm.TRACK_EVENTS.labels(kind=kind.value)
    for reason in (scheduler.REASON_CONFIRMED, scheduler.REASON_BETTER_SHOT, scheduler.REASON_DRIFT,
                   scheduler.REASON_UNCERTAIN, scheduler.REASON_INTERVAL):
        scheduler.EMBEDDINGS_COMPUTED.labels(reason=reason)


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
