"""Retention: delete what the sink stored about people once it is older than ``privacy.retention_days``.

Files under ``out_dir``: best-shot crops (``crops/``), event frames (``frames/``), daily event files
(``events/YYYY-MM-DD.jsonl``) and annotated videos (``*.mp4``) go when their last change is older than the
limit; ``results.jsonl`` keeps its name and loses the lines of frames captured before the limit (rewritten in
place, see :mod:`facestream.pipeline.output_files`), and so do the integrations' dead-letter files
(``dead_letter/*.jsonl``, by the time of each line's event); the events store (``events.db``) loses the events
decided before it. The gallery's sightings and unknown clusters are pruned by the inference stage, which holds
the gallery (:mod:`facestream.pipeline.recognition.gallery_retention`).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

from facestream.errors import FacestreamError

from ..events_store import EventsStore
from ..output_files import DEAD_LETTER, RESULTS, drop_dead_letters_before, drop_results_before


class RetentionSweeper:
    def __init__(self, out_dir: Path, days: float, log: logging.Logger, every_s: float = 600.0,
                 events_db: Path | None = None):
        self.out_dir, self.days, self.log, self.every_s = out_dir, days, log, every_s
        self.events_db = events_db or out_dir / "events.db"  # PipelineConfig.events_db()
        self.last = 0.0

    def maybe_sweep(self) -> int:
        if self.days <= 0 or time.monotonic() - self.last < self.every_s:
            return 0
        self.last = time.monotonic()
        return self.sweep()

    def sweep(self, now: float | None = None) -> int:
        """Remove crops, event frames, event files and videos older than the limit, old result lines and old
        events of the store; returns how many files, lines and events went."""
        cutoff = (now or time.time()) - self.days * 86400
        removed = 0
        for sub, pattern in (("crops", "*.jpg"), ("frames", "*.jpg"), ("events", "*.jsonl"), (".", "*.mp4")):
            folder = self.out_dir / sub
            if not folder.is_dir():
                continue
            for p in folder.rglob(pattern) if sub != "." else folder.glob(pattern):
                try:
                    if p.stat().st_mtime < cutoff:
                        p.unlink()
                        removed += 1
                except OSError:
                    continue
        lines = 0
        if (self.out_dir / RESULTS).is_file():
            try:
                lines = drop_results_before(self.out_dir / RESULTS, int(cutoff * 1e9))
            except OSError as exc:
                self.log.warning("retention: cannot rewrite %s: %s", self.out_dir / RESULTS, exc)
        for path in sorted((self.out_dir / DEAD_LETTER).glob("*.jsonl")):  # events the integrations gave up on
            try:
                lines += drop_dead_letters_before(path, int(cutoff * 1e9))
            except OSError as exc:
                self.log.warning("retention: cannot rewrite %s: %s", path, exc)
        events = self.sweep_store(int(cutoff * 1e9))
        if removed or lines or events:
            self.log.info("retention: removed %d files, %d result lines and %d stored events older than %g days",
                          removed, lines, events, self.days)
        return removed + lines + events

    def sweep_store(self, cutoff_ns: int) -> int:
        path = self.events_db
        if not path.is_file():
            return 0
        try:
            store = EventsStore(path)
            try:
                return store.delete_before(cutoff_ns)
            finally:
                store.close()
        except (sqlite3.Error, OSError, FacestreamError) as exc:
            self.log.warning("retention: cannot prune the events store %s: %s", path, exc)
            return 0
