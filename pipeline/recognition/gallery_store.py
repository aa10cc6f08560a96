"""Where a gallery's rows live: the small storage interface the gallery is written against, and its SQLite file.

:class:`~.gallery.Gallery` holds what is stored and how (one class, one API); a store gives it a connection
(``execute`` with ``?`` placeholders, cursors with ``fetchone``/``fetchall``/iteration/``rowcount``),
transactions, the change counter, the ``meta`` key/value rows and change notifications. Two stores:

- :class:`SQLiteStore` (this module), the embedded default: one file, any path;
- :class:`~.gallery_pg.PostgresStore`, selected by a ``postgresql://`` (or ``postgres://``) URL, shared by
  every host that names the same database (``docs/scaling.md``).

The SQL the gallery sends is the dialect both understand (``ON CONFLICT``, no ``INSERT OR ...``); what differs
(how a new row's id is read, the insertion-order column, change notification) is a store method.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from facestream.errors import FacestreamError
from facestream.fsutil import create_private

GALLERY_ENV = "FACESTREAM_GALLERY"
SCHEMA_VERSION = 1
_URL_PREFIXES = ("postgresql://", "postgres://")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB);
CREATE TABLE IF NOT EXISTS people (
    id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, created_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS embeddings (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    vector BLOB NOT NULL, quality REAL NOT NULL, photo_sha256 TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '', created_ns INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS embeddings_person ON embeddings(person_id);
CREATE TABLE IF NOT EXISTS crops (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE, path TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rejections (
    id INTEGER PRIMARY KEY, ref TEXT NOT NULL,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    vector BLOB, created_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sightings (
    event_id TEXT PRIMARY KEY, track_ref TEXT NOT NULL, stream_id TEXT NOT NULL,
    name TEXT, unknown_id INTEGER, score REAL, vector BLOB, crop_path TEXT, ts_ns INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS sightings_track ON sightings(track_ref);
CREATE INDEX IF NOT EXISTS sightings_unknown ON sightings(unknown_id, ts_ns);
CREATE TABLE IF NOT EXISTS unknowns (
    id INTEGER PRIMARY KEY AUTOINCREMENT, centroid BLOB NOT NULL, seen INTEGER NOT NULL,
    first_ns INTEGER NOT NULL, last_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS unknown_members (
    id INTEGER PRIMARY KEY, unknown_id INTEGER NOT NULL REFERENCES unknowns(id) ON DELETE CASCADE,
    vector BLOB NOT NULL, quality REAL NOT NULL);
"""


def gallery_location(text: str | os.PathLike | None) -> Path | str | None:
    """A gallery as configured: a database URL (kept as text) or a file path. A URL that went through
    ``Path()`` on its way here (``postgresql:/host/db``) gets its ``//`` back."""
    if text is None or text == "":
        return None
    s = str(text)
    for prefix in _URL_PREFIXES:
        if s.startswith(prefix):
            return s
        if s.startswith(prefix[:-1]):  # "postgresql:/..." from Path("postgresql://...")
            return prefix + s[len(prefix) - 1:]
    return Path(s).expanduser()


def is_database_url(location: object) -> bool:
    return isinstance(location, str) and location.startswith(_URL_PREFIXES)


def default_gallery_location() -> Path | str:
    """``$FACESTREAM_GALLERY`` (a file or a database URL), else ``~/.local/share/facestream/gallery.db``."""
    env = gallery_location(os.environ.get(GALLERY_ENV))
    if env is not None:
        return env
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "facestream" / "gallery.db"


class GalleryStore(Protocol):
    """What the gallery needs from its storage."""

    location: Path | str  # the file, or the URL without its password: for messages
    rowid: str  # a column of ``sightings`` that grows with every insert
    shared: bool  # other hosts may write the same rows (unknown ids must come from the database)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...
    def insert_id(self, sql: str, params: Sequence[Any] = ()) -> int: ...
    def transaction(self) -> Any: ...
    def reading(self) -> Any: ...
    def get_meta(self, key: str) -> Any: ...
    def set_meta(self, key: str, value: bytes | str | int) -> None: ...
    def initialise(self) -> None: ...
    def version(self) -> int: ...
    def bump_version(self) -> None: ...
    def notify(self, what: str) -> None: ...
    def changed_since(self, seen_version: int) -> bool: ...
    def close(self) -> None: ...


def open_store(location: Path | str | None, create: bool = True) -> GalleryStore:
    """The store of a gallery location (see :func:`gallery_location`); None = the default location."""
    where = gallery_location(location) or default_gallery_location()
    if is_database_url(where):
        from .gallery_pg import PostgresStore

        return PostgresStore(str(where), create=create)
    return SQLiteStore(Path(where), create=create)


class SQLiteStore:
    """One SQLite gallery file. WAL journal, ``synchronous=FULL``; every write is one ``BEGIN IMMEDIATE``
    transaction, and a transaction opened inside another joins it."""

    rowid = "rowid"
    shared = False

    def __init__(self, path: Path, create: bool = True):
        self.location = self.path = path
        if not create and not path.exists():
            raise FacestreamError(f"no gallery at {path} (add someone first: facestream gallery add)")
        path.parent.mkdir(parents=True, exist_ok=True)
        create_private(path)
        try:
            self.db = sqlite3.connect(path, isolation_level=None, timeout=10.0)
            self.db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.DatabaseError as exc:
            raise FacestreamError(f"{path} is not a facestream gallery ({exc})") from exc
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA foreign_keys=ON")
        with self.transaction():
            for stmt in filter(str.strip, _SCHEMA.split(";")):
                self.db.execute(stmt)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.db.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.db.executemany(sql, rows)

    def insert_id(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(self.db.execute(sql, params).lastrowid)

    @property
    def in_transaction(self) -> bool:
        return self.db.in_transaction

    @contextmanager
    def transaction(self) -> Iterator[SQLiteStore]:
        """One atomic write: BEGIN IMMEDIATE ... COMMIT, rolled back on any error; joins an open one."""
        if self.db.in_transaction:
            yield self
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    @contextmanager
    def reading(self) -> Iterator[SQLiteStore]:
        """A consistent read of several statements (one read transaction)."""
        self.db.execute("BEGIN")
        try:
            yield self
        finally:
            self.db.execute("COMMIT")

    def get_meta(self, key: str) -> bytes | str | int | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: bytes | str | int) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def initialise(self) -> None:
        if self.get_meta("schema_version") is None:
            self.set_meta("schema_version", SCHEMA_VERSION)
            self.set_meta("version", 0)

    def version(self) -> int:
        return int(self.get_meta("version") or 0)

    def bump_version(self) -> None:
        self.db.execute(
            "INSERT INTO meta(key, value) VALUES ('version', 1) "
            "ON CONFLICT(key) DO UPDATE SET value = value + 1"
        )

    def notify(self, what: str) -> None:
        """Nothing to do: every reader of the file sees the change counter move."""

    def changed_since(self, seen_version: int) -> bool:
        return self.version() != seen_version

    def close(self) -> None:
        self.db.close()
