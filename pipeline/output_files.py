"""Rewriting the sink's JSON-lines outputs in place: retention drops old lines, ``gallery forget`` redacts a name.

The files are ``out_dir/results.jsonl`` (one line per frame), ``out_dir/events/YYYY-MM-DD.jsonl`` (one line
per track event) and the integrations' ``out_dir/dead_letter/*.jsonl`` (one line per event an integration gave up
on, the event under ``"event"``). A rewrite goes to a temporary file that replaces the original in one rename, so a reader
never sees half a file; the sink notices the new file (its writer compares inodes) and appends to it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from facestream.errors import FacestreamError
from facestream.fsutil import atomic_open

RESULTS = "results.jsonl"
DEAD_LETTER = "dead_letter"  # pipeline/integrations/dead_letter.py
NAME_FIELDS = ("identity", "name", "previous_identity")  # where faces and events carry a person's name


def output_files(out_dir: Path) -> Iterator[Path]:
    """The results file, the daily event files and the dead-letter files under ``out_dir`` that exist."""
    results = out_dir / RESULTS
    if results.is_file():
        yield results
    for sub in ("events", DEAD_LETTER):
        if (out_dir / sub).is_dir():
            yield from sorted((out_dir / sub).glob("*.jsonl"))


def _changed_lines(text: str, change: Callable[[dict[str, Any]], dict[str, Any] | None | bool]) -> tuple[list[str], int]:
    out: list[str] = []
    changed = 0
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        new = change(record) if isinstance(record, dict) else False
        if new is False:
            out.append(line)
        else:
            changed += 1
            if new is not None:
                out.append(json.dumps(new, separators=(",", ":")))
    return [x for x in out if x], changed


def rewrite_lines(path: Path, change: Callable[[dict[str, Any]], dict[str, Any] | None | bool]) -> int:
    """Apply ``change`` to every JSON line of ``path``: it returns the record to write (changed in place or
    new), None to drop the line, or False to keep it untouched. Lines that are not JSON objects are kept.
    The file is replaced only when something changed; lines a running sink appended meanwhile are carried
    over (changed the same way). Returns how many lines were changed or dropped."""
    with open(path, "rb") as f:
        data = f.read()
    end = data.rfind(b"\n") + 1  # complete lines only; a partial last line is carried over below
    lines, changed = _changed_lines(data[:end].decode("utf-8", "replace"), change)
    if not changed:
        return 0
    private = not path.stat().st_mode & 0o077
    with atomic_open(path, private=private) as out:
        out.write("".join(x + "\n" for x in lines).encode())
        with open(path, "rb") as f:  # what was appended since the read
            f.seek(end)
            tail = f.read()
        more, n = _changed_lines(tail.decode("utf-8", "replace"), change)
        out.write("".join(x + "\n" for x in more).encode())
        changed += n
    return changed


def redact_name(record: dict[str, Any], name: str) -> dict[str, Any] | bool:
    """``record`` (a result line or an event line) with every occurrence of ``name`` as an identity set to
    null and the best shot of its events dropped; False when the name does not occur."""
    hit = False

    def scrub(d: Any) -> None:
        nonlocal hit
        if not isinstance(d, dict):
            return
        named = False
        for key in NAME_FIELDS:
            if d.get(key) == name:
                d[key] = None
                named = hit = True
        if named:
            for key in ("best_shot_path", "similarity", "confidence", "score"):
                d.pop(key, None)

    scrub(record)
    scrub(record.get("event"))  # a dead-letter line
    for key in ("faces", "events"):
        entries = record.get(key)
        for entry in entries if isinstance(entries, list) else []:
            scrub(entry)
    return record if hit else False


def forget_name_in_outputs(out_dir: Path, name: str) -> tuple[int, int]:
    """Redact ``name`` from the results and event files under ``out_dir``: (files rewritten, lines changed)."""
    files = lines = 0
    for path in output_files(out_dir):
        n = rewrite_lines(path, lambda r: redact_name(r, name))
        files, lines = files + bool(n), lines + n
    return files, lines


def forget_name_in_store(out_dir: Path, name: str, events_db: Path | None = None) -> tuple[int, int]:
    """Delete the events naming ``name`` from the events store under ``out_dir`` (when there is one) and their
    frame files: (events deleted, frames deleted)."""
    from .events_store import EventsStore

    path = events_db or out_dir / "events.db"
    if not path.is_file():
        return 0, 0
    try:
        store = EventsStore(path)
        try:
            frames = store.frames_of(name)
            events = store.forget_person(name)
        finally:
            store.close()
    except sqlite3.Error as exc:
        raise FacestreamError(f"cannot forget {name} in the events store {path}: {exc}") from None
    gone = 0
    for rel in frames:
        p = out_dir / rel
        if p.parent.name == "frames" and p.is_file():  # only the sink's frame files, whatever a row says
            p.unlink()
            gone += 1
    return events, gone


def drop_results_before(path: Path, cutoff_ns: int) -> int:
    """Drop the result lines of frames captured before ``cutoff_ns``; returns how many went. Cheap when the
    oldest line is recent (the file is in capture order, so the first line decides)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            first = json.loads(f.readline() or "{}")
    except (OSError, ValueError):
        first = {}
    if isinstance(first, dict) and int(first.get("capture_wall_ns") or 0) >= cutoff_ns:
        return 0

    def keep(record: dict[str, Any]) -> None | bool:
        ts = record.get("capture_wall_ns")
        return None if isinstance(ts, int) and ts < cutoff_ns else False

    return rewrite_lines(path, keep)


def drop_dead_letters_before(path: Path, cutoff_ns: int) -> int:
    """Drop the lines of a dead-letter file whose event was decided before ``cutoff_ns``; returns how many
    went (the file is in the order events were given up on, not their time: every line is read)."""

    def keep(record: dict[str, Any]) -> None | bool:
        event = record.get("event")
        ts = event.get("ts_ns") if isinstance(event, dict) else None
        return None if isinstance(ts, int) and ts < cutoff_ns else False

    return rewrite_lines(path, keep)
