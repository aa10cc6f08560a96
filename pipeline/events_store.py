"""The events store: every track event the sink writes, in SQLite, indexed by time, camera, person and unknown id.

The sink is the only writer (``out_dir/events.db``); the web app and ``facestream events query`` read it. WAL mode
lets readers run beside the writer. An event id is the primary key, so a replayed event is stored once.
Times are capture wall-clock nanoseconds (``ts_ns``), the frame the event was decided on.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facestream.errors import FacestreamError

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    event_id   TEXT PRIMARY KEY,
    ts_ns      INTEGER NOT NULL,
    camera     TEXT NOT NULL,
    kind       TEXT NOT NULL,
    person     TEXT,             -- the gallery name when the event names one
    unknown_id INTEGER,          -- the anonymous id when the face is unknown#N
    identity   TEXT,             -- the label: a name, unknown#N or unknown
    track_ref  TEXT,
    seq        INTEGER,
    score      REAL,
    crop       TEXT,             -- best-shot crop file (path as written by inference), or null
    frame      TEXT,             -- annotated frame of the event, relative to out_dir, or null
    record     TEXT NOT NULL     -- the whole event as JSON
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts_ns);
CREATE INDEX IF NOT EXISTS events_camera_ts ON events (camera, ts_ns);
CREATE INDEX IF NOT EXISTS events_person_ts ON events (person, ts_ns);
CREATE INDEX IF NOT EXISTS events_unknown_ts ON events (unknown_id, ts_ns);
"""
COLUMNS = ("event_id", "ts_ns", "camera", "kind", "person", "unknown_id", "identity", "track_ref", "seq", "score",
           "crop", "frame")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True)
class EventQuery:
    """A filter on the store; None means any. ``since_ns``/``until_ns`` bound ``ts_ns`` (inclusive, exclusive)."""

    person: str | None = None
    camera: str | None = None
    unknown_id: int | None = None
    kind: str | None = None
    since_ns: int | None = None
    until_ns: int | None = None
    limit: int = 100
    offset: int = 0


def parse_since(text: str, now_ns: int | None = None) -> int:
    """``1h``, ``30m``, ``2d``, ``45s``, ``1w`` ago, or an ISO-8601 time, or epoch seconds -> wall ns."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    t = text.strip()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhdw])", t)
    if m:
        return now_ns - int(float(m.group(1)) * _UNITS[m.group(2)] * 1e9)
    if re.fullmatch(r"\d+(?:\.\d+)?", t):
        return int(float(t) * 1e9)
    from datetime import datetime, timezone

    try:
        dt = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise FacestreamError(f"cannot read time {text!r}: use 30m, 1h, 2d, epoch seconds or 2026-12-01T10:00") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1e9)


def _row(event: dict[str, Any], frame: str | None) -> tuple[Any, ...]:
    identity = event.get("identity")
    name = event.get("name")
    unknown = event.get("unknown_id")
    return (str(event["event_id"]), int(event["ts_ns"]), str(event["stream_id"]), str(event["kind"]),
            name if isinstance(name, str) and name else None, unknown if isinstance(unknown, int) else None,
            identity if isinstance(identity, str) else None, event.get("track_ref"), event.get("seq"),
            event.get("score") if isinstance(event.get("score"), int | float) else None,
            event.get("best_shot_path"), frame, json.dumps(event, separators=(",", ":")))


class EventsStore:
    """One SQLite file of events. ``readonly`` opens for readers (the web app, the CLI) without creating it."""

    def __init__(self, path: Path | str, readonly: bool = False):
        self.path = Path(path)
        if readonly:
            if not self.path.is_file():
                raise FacestreamError(f"no events store at {self.path} (the sink creates it when a run writes events)")
            self.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5, check_same_thread=False)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=5, check_same_thread=False)
        self.check_version()  # before a writer touches it: never stamp a newer store with our version
        if not readonly:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
            self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self.db.commit()
        self.db.row_factory = sqlite3.Row

    def check_version(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            self.db.close()
            raise FacestreamError(f"events store {self.path} has schema {version}, newer than this facestream "
                                  f"({SCHEMA_VERSION}): upgrade facestream")

    def add(self, event: dict[str, Any], frame: str | None = None) -> bool:
        """Store one event (a :meth:`EventRecord.to_meta` dict); False when its id is already stored."""
        cur = self.db.execute(f"INSERT OR IGNORE INTO events ({', '.join(COLUMNS)}, record) "
                              f"VALUES ({', '.join('?' * (len(COLUMNS) + 1))})", _row(event, frame))
        self.db.commit()
        return cur.rowcount == 1

    def add_many(self, events: Iterable[dict[str, Any]]) -> int:
        cur = self.db.executemany(f"INSERT OR IGNORE INTO events ({', '.join(COLUMNS)}, record) "
                                  f"VALUES ({', '.join('?' * (len(COLUMNS) + 1))})", [_row(e, None) for e in events])
        self.db.commit()
        return cur.rowcount

    def query(self, q: EventQuery = EventQuery()) -> list[dict[str, Any]]:
        """Newest first. Each row is the stored event plus ``camera``, ``person`` and ``frame``."""
        where, args = [], []
        for column, value in (("person", q.person), ("camera", q.camera), ("unknown_id", q.unknown_id),
                              ("kind", q.kind)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if q.since_ns is not None:
            where.append("ts_ns >= ?")
            args.append(q.since_ns)
        if q.until_ns is not None:
            where.append("ts_ns < ?")
            args.append(q.until_ns)
        sql = "SELECT * FROM events" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY ts_ns DESC, event_id LIMIT ? OFFSET ?"
        rows = self.db.execute(sql, (*args, max(0, q.limit), max(0, q.offset))).fetchall()
        return [{**json.loads(r["record"]), "camera": r["camera"], "person": r["person"], "frame": r["frame"]}
                for r in rows]

    def get(self, event_id: str) -> dict[str, Any] | None:
        r = self.db.execute("SELECT * FROM events WHERE event_id = ?", (event_id,)).fetchone()
        if r is None:
            return None
        return {**json.loads(r["record"]), "camera": r["camera"], "person": r["person"], "frame": r["frame"]}

    def cameras(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT camera FROM events ORDER BY camera")]

    def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM events").fetchone()[0])

    def delete_before(self, ts_ns: int) -> int:
        """Retention: remove events decided before ``ts_ns``; returns how many went."""
        cur = self.db.execute("DELETE FROM events WHERE ts_ns < ?", (ts_ns,))
        self.db.commit()
        return cur.rowcount

    def frames_of(self, name: str) -> list[str]:
        """The event frames (relative to out_dir) of the rows :meth:`forget_person` would remove."""
        return [r[0] for r in self.db.execute("SELECT frame FROM events WHERE (person = ? OR identity = ?) "
                                              "AND frame IS NOT NULL", (name, name))]

    def forget_person(self, name: str) -> int:
        """``gallery forget``: the person's events go (their rows name them)."""
        cur = self.db.execute("DELETE FROM events WHERE person = ? OR identity = ?", (name, name))
        self.db.commit()
        return cur.rowcount

    def close(self) -> None:
        self.db.close()
