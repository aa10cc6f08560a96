"""The gallery's storage handle: its store (:mod:`.gallery_store`: the SQLite file or a PostgreSQL database),
transactions, the change counter, encryption and stored vectors.

Durability: every write is one transaction (SQLite: WAL, ``synchronous=FULL``, ``BEGIN IMMEDIATE``), so a
crash loses at most the write in progress. A transaction opened inside another joins it (one commit for both),
which lets an import or a promotion reuse :meth:`Gallery.enrol` and stay atomic.

A SQLite file is created with mode 0600 (SQLite gives its ``-wal`` and ``-shm`` files the same mode): it holds
biometric data.

A stored vector that does not decode to one finite embedding (a row written by hand, a damaged file) is not
fatal: :meth:`GalleryDB.read_vector` reports it once per row (a warning and
``facestream_gallery_corrupt_rows_total``) and the row is skipped by whoever reads it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from prometheus_client import Counter

from facestream.engines.faces.vectors import EMBEDDING_SIZE
from facestream.errors import FacestreamError

from .crypto import KEY_ENV, Cipher, key_from_env, new_salt
from .gallery_store import GALLERY_ENV, GalleryStore, default_gallery_location, open_store

__all__ = ["GALLERY_ENV", "GalleryDB", "check_name", "default_gallery_path", "embedding_problem"]
_KEY_CHECK = b"facestream-gallery-key-check"

CORRUPT_ROWS = Counter(
    "facestream_gallery_corrupt_rows_total",
    "Gallery rows skipped because their stored vector is not one finite embedding",
    ["table"],
)
log = logging.getLogger(__name__)

def default_gallery_path() -> Path | str:
    """``$FACESTREAM_GALLERY`` (a file or a ``postgresql://`` URL), else ~/.local/share/facestream/gallery.db."""
    return default_gallery_location()


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
    """One gallery (a SQLite file or a ``postgresql://`` database). Not shared between threads; open one per
    process or thread."""

    def __init__(self, path: Path | str | None = None, key: str | None = None, create: bool = True):
        self.store: GalleryStore = open_store(path, create=create)
        self.db = self.store  # ``execute`` with ``?`` placeholders on either store
        self.path = self.store.location  # the file, or the database URL without its password
        try:
            self._cipher = self._open_cipher(key if key is not None else key_from_env())
        except BaseException:
            self.store.close()
            raise
        self.corrupt_rows: set[tuple[str, int]] = set()  # (table, row id) reported so far

    @property
    def shared(self) -> bool:
        """Other hosts write this gallery too (PostgreSQL)."""
        return self.store.shared

    @contextmanager
    def transaction(self) -> Iterator[GalleryStore]:
        """One atomic write, rolled back on any error; joins an open one."""
        with self.store.transaction() as db:
            yield db

    def close(self) -> None:
        self.store.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- meta and the change counter ---------------------------------------------------------------------

    def _meta(self, key: str) -> bytes | str | int | None:
        return self.store.get_meta(key)

    def _set_meta(self, key: str, value: bytes | str | int) -> None:
        self.store.set_meta(key, value)

    def version(self) -> int:
        return self.store.version()

    def bump_version(self) -> None:
        """Matching changed: readers reload (on PostgreSQL every host is notified when the write commits)."""
        self.store.bump_version()

    # -- encryption and stored vectors -------------------------------------------------------------------

    def _open_cipher(self, key: str | None) -> Cipher | None:
        with self.transaction():
            self.store.initialise()
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
