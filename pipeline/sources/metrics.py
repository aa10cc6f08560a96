"""Per-stream source metrics (prometheus_client default registry), label ``stream``."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

FRAMES = Counter("facestream_source_frames_total", "Frames delivered by a source", ["stream"])
DROPPED = Counter(
    "facestream_source_dropped_frames_total",
    "Frames a live source dropped because its consumer fell behind (latest-frame policy)",
    ["stream"],
)
RECONNECTS = Counter(
    "facestream_source_reconnects_total", "Connection attempts to a live source after the first", ["stream"]
)
STALLS = Counter(
    "facestream_source_stalls_total", "Live source sent no frame within read_timeout_s", ["stream"]
)
DECODE_ERRORS = Counter(
    "facestream_source_decode_errors_total",
    "Frames or files that could not be decoded (corrupt or truncated input, failed opens)",
    ["stream"],
)
RESOLUTION_CHANGES = Counter(
    "facestream_source_resolution_changes_total", "Frame size changed mid-stream", ["stream"]
)
SKIPPED_FILES = Counter(
    "facestream_source_skipped_files_total", "Files in an image directory that are not readable images", ["stream"]
)
SKIPPED_NONREF = Counter(
    "facestream_source_nonref_skipped_total",
    "Non-reference frames a live source did not decode because the pipeline was using too few of its frames",
    ["stream"],
)
DECODE_SKIPPING = Gauge(
    "facestream_source_decode_skipping", "1 while a live source skips its non-reference frames, else 0", ["stream"]
)
UP = Gauge("facestream_source_up", "1 while the source is delivering frames, else 0", ["stream"])
