"""The dead-letter file of an integration: one JSON line per event it gave up on, so nothing vanishes."""

from __future__ import annotations

import json
import logging
import threading
import urllib.parse
from pathlib import Path
from typing import Any

from .. import metrics as m
from .payload import iso_time


def redact_url(url: str) -> str:
    """The URL without user:password (it goes to logs and files)."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


class DeadLetter:
    """Appends ``{"time", "integration", "url", "reason", "attempts", "error", "event"}`` lines to ``path``;
    every line is counted in facestream_integration_dropped_total{reason}."""

    def __init__(self, path: Path, integration: str, log: logging.Logger):
        self.path, self.integration, self.log = path, integration, log
        self.lock = threading.Lock()
        self.failed = False

    def write(self, event: dict[str, Any], reason: str, attempts: int, error: str, url: str) -> bool:
        record = {"time": iso_time(), "integration": self.integration, "url": url, "reason": reason,
                  "attempts": attempts, "error": error, "event": event}
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=str)
        m.INTEGRATION_DROPPED.labels(self.integration, reason).inc()
        with self.lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.path, "a", encoding="utf-8") as f:
                    f.write(line + "\n")
                self.failed = False
                return True
            except OSError as exc:
                m.INTEGRATION_DROPPED.labels(self.integration, "dead_letter_error").inc()
                if not self.failed:
                    self.log.error("%s: cannot write the dead-letter file %s (%s); event %s is lost",
                                   self.integration, self.path, exc.strerror or exc, event.get("event_id"))
                    self.failed = True
                return False
