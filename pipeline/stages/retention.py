"""Retention: delete stored crops and daily event files older than ``privacy.retention_days``."""

from __future__ import annotations

import logging
import time
from pathlib import Path


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
        """Remove crops and event files older than the limit; returns how many files went."""
        cutoff = (now or time.time()) - self.days * 86400
        removed = 0
        for sub, pattern in (("crops", "*.jpg"), ("events", "*.jsonl")):
            folder = self.out_dir / sub
            if not folder.is_dir():
                continue
            for p in folder.rglob(pattern):
                try:
                    if p.stat().st_mtime < cutoff:
                        p.unlink()
                        removed += 1
                except OSError:
                    continue
        if removed:
            self.log.info("retention: removed %d files older than %g days", removed, self.days)
        return removed
