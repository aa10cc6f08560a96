"""The sink's writer of the events store (pipeline/events_store.py), which must never stop the sink.

The store opens on the first event. A failure (disk full, database locked or corrupt, a newer schema) is
counted (``facestream_sink_write_errors_total{reason="events_db"}``) and logged once until a write works
again; the connection is reopened for the next event. The daily JSON-lines files are written regardless.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

from facestream.errors import FacestreamError

from .. import metrics as m
from ..events_store import EventsStore


class StoreWriter:
    def __init__(self, path: Path, log: logging.Logger):
        self.path, self.log = path, log
        self.store: EventsStore | None = None
        self.failing = False

    def add(self, event: dict[str, Any], frame: str | None = None) -> bool | None:
        """True: stored; False: its id was stored already (a replay); None: it could not be written."""
        try:
            if self.store is None:
                self.store = EventsStore(self.path)
            added = self.store.add(event, frame=frame)
        except (sqlite3.Error, OSError, FacestreamError) as exc:
            m.SINK_WRITE_ERRORS.labels("events_db").inc()
            if not self.failing:
                self.log.error("sink: cannot write the events store %s (%s); events still go to events/*.jsonl",
                               self.path, exc)
                self.failing = True
            self.close()
            return None
        if self.failing:
            self.log.info("sink: writing the events store %s works again", self.path)
            self.failing = False
        if added:
            m.SINK_EVENTS.labels("event_db").inc()
        return added

    def close(self) -> None:
        if self.store is not None:
            try:
                self.store.close()
            except sqlite3.Error:
                pass
            self.store = None
