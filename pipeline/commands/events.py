"""``facestream events query``: the sink's events store (``out_dir/events.db``, read-only) as CSV or JSON.

The store is the one the config names (``--config``, else ``$FACESTREAM_CONFIG``: ``sink.out_dir``), or
``--db FILE``. Newest events first.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sqlite3
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from facestream.errors import FacestreamError

CSV_COLUMNS = ("time", "camera", "kind", "identity", "person", "unknown_id", "score", "track_ref", "event_id",
               "crop", "frame")


def register(subparsers: argparse._SubParsersAction) -> None:
    e = subparsers.add_parser("events", help="query the events the sink stored (out_dir/events.db)")
    sub = e.add_subparsers(dest="events_command", metavar="ACTION", required=True)
    p = sub.add_parser("query", help="events newest first, filtered; CSV or JSON on stdout")
    p.add_argument("--person", help="gallery name")
    p.add_argument("--camera", help="stream id")
    p.add_argument("--unknown", metavar="N", help="anonymous id of an unknown face (7 or unknown#7)")
    p.add_argument("--kind", choices=("track_started", "identified", "identity_changed", "track_ended"))
    p.add_argument("--since", help="from this time: 30m, 1h, 2d (ago), epoch seconds or ISO-8601 (UTC if no zone)")
    p.add_argument("--until", help="before this time (same forms as --since)")
    p.add_argument("--limit", type=int, default=1000, help="most events printed (default 1000)")
    p.add_argument("--format", choices=("csv", "json"), default="csv", help="output format (default csv)")
    p.add_argument("--db", type=Path, default=None, help="events store file; default: the config's out_dir/events.db")
    p.set_defaults(func=cmd_query)


def store_path(args: argparse.Namespace) -> Path:
    if args.db is not None:
        return Path(args.db)
    from ..config import load_config

    return load_config(getattr(args, "config", None) or os.environ.get("FACESTREAM_CONFIG") or None).events_db()


def cmd_query(args: argparse.Namespace) -> int:
    from ..events_store import EventQuery, EventsStore, parse_since

    if args.limit < 1:
        raise FacestreamError(f"--limit must be at least 1, got {args.limit}")
    unknown = None
    if args.unknown is not None:
        from ..recognition.unknowns import parse_unknown_id

        unknown = parse_unknown_id(args.unknown)
    q = EventQuery(person=args.person, camera=args.camera, unknown_id=unknown, kind=args.kind,
                   since_ns=parse_since(args.since) if args.since else None,
                   until_ns=parse_since(args.until) if args.until else None, limit=args.limit)
    path = store_path(args)
    store = EventsStore(path, readonly=True)
    try:
        rows = store.query(q)
    except sqlite3.Error as exc:
        raise FacestreamError(f"cannot read the events store {path}: {exc}") from None
    finally:
        store.close()
    if args.format == "json":
        json.dump(rows, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        writer.writerows(csv_row(r) for r in rows)
    return 0


def csv_row(r: dict[str, Any]) -> list[Any]:
    t = datetime.fromtimestamp(int(r["ts_ns"]) / 1e9, tz=timezone.utc).isoformat(timespec="milliseconds")
    values = {**r, "time": t.replace("+00:00", "Z"), "crop": r.get("best_shot_path")}
    return ["" if values.get(c) is None else values[c] for c in CSV_COLUMNS]
