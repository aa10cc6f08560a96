"""Retention in the gallery: sightings and unknown clusters (embeddings of strangers) older than
``privacy.retention_days`` are deleted. Known people's enrolment is kept: it is what the gallery is for."""

from __future__ import annotations

import logging
import time

from .gallery_db import GalleryDB

log = logging.getLogger(__name__)


def prune_gallery(gallery: GalleryDB, cutoff_ns: int) -> tuple[int, int]:
    """Delete sightings seen before ``cutoff_ns`` and unknown clusters last seen before it (their members go
    with them); returns (sightings, clusters) deleted. A removed cluster bumps the version, so a running
    recognizer reloads its clusters."""
    with gallery.transaction() as db:
        sightings = db.execute("DELETE FROM sightings WHERE ts_ns < ?", (cutoff_ns,)).rowcount
        clusters = db.execute("DELETE FROM unknowns WHERE last_ns < ?", (cutoff_ns,)).rowcount
        if clusters:
            gallery.bump_version()
    return sightings, clusters


class GalleryRetention:
    """Runs :func:`prune_gallery` at most every ``every_s`` seconds (from the inference stage's loop)."""

    def __init__(self, gallery: GalleryDB, days: float, every_s: float = 600.0):
        self.gallery, self.days, self.every_s = gallery, days, every_s
        self.last = 0.0

    def maybe_prune(self) -> tuple[int, int]:
        if self.days <= 0 or time.monotonic() - self.last < self.every_s:
            return 0, 0
        self.last = time.monotonic()
        found = prune_gallery(self.gallery, time.time_ns() - int(self.days * 86400e9))
        if any(found):
            log.info("retention: removed %d sightings and %d unknown clusters older than %g days", *found, self.days)
        return found
