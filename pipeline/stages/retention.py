"""Retention: delete what the sink stored about people once it is older than ``privacy.retention_days``.

Files under ``out_dir``: best-shot crops (``crops/``), daily event files (``events/YYYY-MM-DD.jsonl``) and
annotated videos (``*.mp4``) go when their last change is older than the limit; ``results.jsonl`` keeps its
name and loses the lines of frames captured before the limit (rewritten in place, see
:mod:`pipeline.output_files`). The gallery's sightings and unknown clusters are pruned by the inference
stage, which holds the gallery (:mod:`pipeline.recognition.gallery_retention`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ..output_files import RESULTS, drop_results_before


class RetentionSweeper:
    def __init__(self, out_dir: Path, days: float, log: logging.Logger, every_s: float = 600.0):
        self.out_dir, self.days, self.log, self.every_s = out_dir, days, log, every_s
        self.last = 0.0

    def maybe_sweep(self) -> int:
        if self.days <= 0 or time.monotonic() - self.last < self.every_s:
            return 0
        self.last = time.monotonic()
        return self.sweep()

    def sweep(self, now: float | None = None) -> int:
        """Remove crops, event files and videos older than the limit, and old result lines; returns how many
        files and lines went."""
        cutoff = (now or time.time()) - self.days * 86400
        removed = 0
        for sub, pattern in (("crops", "*.jpg"), ("events", "*.jsonl"), (".", "*.mp4")):
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
        if removed or lines:
            self.log.info("retention: removed %d files and %d result lines older than %g days", removed, lines,
                          self.days)
        return removed + lines
