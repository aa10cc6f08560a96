"""Prometheus metrics of the stream recognizer (docs/metrics.md)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MATCH_SCORE = Histogram(
    "facestream_match_score",
    "Best gallery cosine score of each track decision (known and unknown)",
    buckets=(0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.88, 0.9, 0.92, 0.94, 0.96, 0.98, 1.0),
)
TRACK_EVENTS = Counter("facestream_track_events_total", "Track events emitted", ["kind"])
ACTIVE_TRACKS = Gauge("facestream_tracks_active", "Confirmed tracks currently alive", ["stream"])
GALLERY_PEOPLE = Gauge("facestream_gallery_size", "People in the gallery the running pipeline matches against")
GALLERY_RELOADS = Counter("facestream_gallery_reloads_total", "Gallery reloads after a change")
