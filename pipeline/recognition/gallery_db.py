"""The gallery's SQLite file: schema, transactions, the change counter, encryption and stored vectors.

Durability: WAL journal, ``synchronous=FULL``, and every write is one ``BEGIN IMMEDIATE`` transaction, so a crash
loses at most the write in progress. A transaction opened inside another joins it (one commit for both), which
lets an import or a promotion reuse :meth:`Gallery.enrol` and stay atomic.

The file is created with mode 0600 (SQLite gives its ``-wal`` and ``-shm`` files the same mode): it holds
biometric data.

A stored vector that does not decode to one finite embedding (a row written by hand, a damaged file) is not
fatal: :meth:`GalleryDB.read_vector` reports it once per row (a warning and
``facestream_gallery_corrupt_rows_total``) and the row is skipped by whoever reads it.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from prometheus_client import Counter

from facestream.engines.faces.vectors import EMBEDDING_SIZE
from facestream.errors import FacestreamError
from facestream.fsutil import create_private

from .crypto import KEY_ENV, Cipher, key_from_env, new_salt

GALLERY_ENV = "FACESTREAM_GALLERY"
SCHEMA_VERSION = 1
_KEY_CHECK = b"facestream-gallery-key-check"

CORRUPT_ROWS = Counter(
    "facestream_gallery_corrupt_rows_total",
    "Gallery rows skipped because their stored vector is not one finite embedding",
    ["table"],
)
log = logging.getLogger(__name__)

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


def default_gallery_path() -> Path:
    env = os.environ.get(GALLERY_ENV)
    if env:
        return Path(env).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "facestream" / "gallery.db"


def check_name(name: str) -> str:
    """A person's name, stripped; FacestreamError when it is empty, too long, multi-line or reserved."""
    name = (name or "").strip()
    if not name or len(name) > 200 or any(c in name for c in "\n\r\t"):
        raise FacestreamError(f"invalid person name {name!r}: use 1-200 printable characters")
    if name.lower().startswith("unknown#"):
        raise FacestreamError(f"invalid person name {name!r}: 'unknown#' is reserved for anonymous ids")
    return name


def embedding_problem(vector: np.ndarray) -> str | None:
    """Why ``vector`` cannot be stored as a face embedding, or None when it can."""
    v = np.asarray(vector)
    if v.shape != (EMBEDDING_SIZE,):
        return f"not {EMBEDDING_SIZE} numbers (shape {v.shape})"
    if not np.issubdtype(v.dtype, np.number) or not np.all(np.isfinite(v)):
        return "not all finite numbers"
    return None


class GalleryDB:
    """One SQLite gallery file. Not shared between threads; open one per process or thread."""

    def __init__(self, path: Path | str | None = None, key: str | None = None, create: bool = True):
        self.path = Path(path).expanduser() if path else default_gallery_path()
        if not create and not self.path.exists():
            raise FacestreamError(f"no gallery at {self.path} (add someone first: facestream gallery add)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        create_private(self.path)
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
            self.db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.DatabaseError as exc:
            raise FacestreamError(f"{self.path} is not a facestream gallery ({exc})") from exc
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA foreign_keys=ON")
        with self.transaction():
            for stmt in filter(str.strip, _SCHEMA.split(";")):
                self.db.execute(stmt)
        self._cipher = self._open_cipher(key if key is not None else key_from_env())
        self.corrupt_rows: set[tuple[str, int]] = set()  # (table, row id) reported so far

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: BEGIN IMMEDIATE ... COMMIT, rolled back on any error; joins an open one."""
        if self.db.in_transaction:
            yield self.db
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- meta and the change counter ---------------------------------------------------------------------

    def _meta(self, key: str) -> bytes | str | int | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: bytes | str | int) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def version(self) -> int:
        return int(self._meta("version") or 0)

    def bump_version(self) -> None:
        self.db.execute(
            "INSERT INTO meta(key, value) VALUES ('version', 1) "
            "ON CONFLICT(key) DO UPDATE SET value = value + 1"
        )

    # -- encryption and stored vectors -------------------------------------------------------------------

    def _open_cipher(self, key: str | None) -> Cipher | None:
        with self.transaction():
            if self._meta("schema_version") is None:
                self._set_meta("schema_version", SCHEMA_VERSION)
                self._set_meta("version", 0)
                empty = True
            else:
                empty = self.db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] == 0
            mode = self._meta("encryption")
            if mode is None and key and empty:
                salt = new_salt()
                cipher = Cipher(key, salt)
                self._set_meta("encryption", "fernet")
                self._set_meta("salt", salt)
                self._set_meta("key_check", cipher.encrypt(_KEY_CHECK))
                return cipher
        if mode is None:
            if key:
                raise FacestreamError(
                    f"gallery {self.path} was created without encryption but {KEY_ENV} is set: "
                    "unset it, or export and re-import into a new gallery with the key set"
                )
            return None
        if not key:
            raise FacestreamError(f"gallery {self.path} is encrypted: set {KEY_ENV} to its key")
        cipher = Cipher(key, bytes(self._meta("salt")))  # type: ignore[arg-type]
        if cipher.decrypt(bytes(self._meta("key_check"))) != _KEY_CHECK:  # type: ignore[arg-type]
            raise FacestreamError(f"wrong {KEY_ENV} for gallery {self.path}")
        return cipher

    @property
    def encrypted(self) -> bool:
        return self._cipher is not None

    def pack_vector(self, vector: np.ndarray) -> bytes:
        raw = np.asarray(vector, dtype="<f4").ravel().tobytes()
        return self._cipher.encrypt(raw) if self._cipher else raw

    def unpack_vector(self, blob: bytes) -> np.ndarray:
        raw = self._cipher.decrypt(bytes(blob)) if self._cipher else bytes(blob)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32)

    def read_vector(self, blob: bytes, table: str, row_id: int) -> np.ndarray | None:
        """The embedding stored in ``table`` row ``row_id``, or None (reported once) when it is corrupt."""
        try:
            vector = self.unpack_vector(blob)
            problem = embedding_problem(vector)
        except (FacestreamError, ValueError, TypeError) as exc:  # undecryptable, or not a byte string
            problem = f"cannot be decoded ({exc})"
        if problem is None:
            return vector
        if (table, row_id) not in self.corrupt_rows:
            self.corrupt_rows.add((table, row_id))
            CORRUPT_ROWS.labels(table).inc()
            log.warning("gallery %s: %s row %d skipped: its vector is %s", self.path, table, row_id, problem)
        return None

    # -- people ------------------------------------------------------------------------------------------

    def person_id(self, name: str) -> int | None:
        row = self.db.execute("SELECT id FROM people WHERE name=?", (name,)).fetchone()
        return row[0] if row else None

    def names(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT name FROM people ORDER BY name")]

    def _require_person(self, name: str) -> int:
        pid = self.person_id(name)
        if pid is None:
            known = ", ".join(self.names()[:10]) or "nobody yet"
            raise FacestreamError(f"no person named {name!r} in the gallery (known: {known})")
        return pid
