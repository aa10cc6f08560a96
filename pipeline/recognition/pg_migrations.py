"""Versioned schema of the PostgreSQL gallery: an ordered list of SQL files, ``migrations/postgres/NNNN_name.sql``.

At every start the store applies, in one transaction holding the gallery's advisory lock, every file newer than
the highest version in ``schema_version`` (one row per applied file), so hosts starting together migrate once.
A database whose schema is newer than the newest file this facestream ships was migrated by a newer release:
the start refuses (one line) instead of writing rows that release would misread.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from facestream.errors import FacestreamError

MIGRATIONS_DIR = Path(__file__).parent / "migrations" / "postgres"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# pg_advisory_xact_lock key taken by every gallery write and by migrations ("fsgallry" in ASCII).
LOCK_KEY = 0x66736761_6C6C7279


def migrations(folder: Path = MIGRATIONS_DIR) -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of every migration, in order; versions must be 1, 2, 3, ... without gaps."""
    found = sorted((int(m.group(1)), p.name) for p in folder.glob("*.sql") if (m := _NAME.match(p.name)))
    if [v for v, _ in found] != list(range(1, len(found) + 1)):
        raise FacestreamError(f"gallery migrations in {folder} are not numbered 0001, 0002, ...: {found}")
    return [(v, name, (folder / name).read_text()) for v, name in found]


def current_version(conn: Any) -> int | None:
    """The schema version of the database, or None when it holds no gallery yet."""
    if conn.execute("SELECT to_regclass('schema_version')").fetchone()[0] is None:
        return None
    return int(conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0])


def migrate(conn: Any, where: str, create: bool = True, folder: Path = MIGRATIONS_DIR) -> int:
    """Bring the schema up to date on ``conn`` (autocommit connection); returns the version now in place."""
    known = migrations(folder)
    latest = known[-1][0] if known else 0
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        current = current_version(conn)
        if current is None and not create:
            raise FacestreamError(f"no gallery in {where} (add someone first: facestream gallery add)")
        if current is not None and current > latest:
            raise FacestreamError(
                f"gallery {where} has schema version {current}, newer than this facestream knows ({latest}): "
                "upgrade facestream on this host")
        if current is None:
            conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                         "applied_ns BIGINT NOT NULL)")
            current = 0
        for version, name, sql in known:
            if version > current:
                conn.execute(sql)
                conn.execute("INSERT INTO schema_version (version, name, applied_ns) VALUES (%s, %s, %s)",
                             (version, name, time.time_ns()))
    return latest
