"""The gallery: known people, their embeddings, negative feedback, sightings and unknown clusters, in SQLite.

Durability: WAL journal, ``synchronous=FULL``, and every write (one enrolment, one import, one rename) is one
``BEGIN IMMEDIATE`` transaction, so a crash loses at most the write in progress, never what was committed.

Live reload: every change that matters to matching (people, embeddings, rejections, unknown clusters changed
by an operator) bumps a ``version`` row in ``meta``; a running pipeline calls :meth:`Gallery.reload_if_changed`
once in a while and gets a fresh :class:`GallerySnapshot` only when the number moved.

Encryption: when ``$FACESTREAM_GALLERY_KEY`` is set at creation, every stored vector (embeddings, rejections,
sightings, unknown clusters) is Fernet-encrypted; opening such a gallery needs the same key.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facestream.errors import FacestreamError

from .crypto import KEY_ENV, Cipher, key_from_env, new_salt

GALLERY_ENV = "FACESTREAM_GALLERY"
EXPORT_FORMAT = "facestream-gallery"
SCHEMA_VERSION = 1
_KEY_CHECK = b"facestream-gallery-key-check"

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


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 200 or any(c in name for c in "\n\r\t"):
        raise FacestreamError(f"invalid person name {name!r}: use 1-200 printable characters")
    if name.lower().startswith("unknown#"):
        raise FacestreamError(f"invalid person name {name!r}: 'unknown#' is reserved for anonymous ids")
    return name


@dataclass
class EnrolItem:
    """One embedding to store for a person, with where it came from."""

    embedding: np.ndarray
    quality: float
    photo_sha256: str = ""
    source: str = ""
    crop_path: str | None = None


@dataclass
class PersonInfo:
    name: str
    embeddings: int
    created_ns: int
    rejections: int = 0


@dataclass
class GallerySnapshot:
    """What the matcher needs, read in one go: unit vectors, their owners and the negative feedback."""

    version: int
    names: list[str]
    vectors: np.ndarray  # (M, D) float32, L2-normalised
    owner: np.ndarray  # (M,) int: index into names
    rejection_refs: dict[str, set[str]] = field(default_factory=dict)  # ref -> names rejected for it
    rejection_vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    rejection_owner: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


def l2_normalise(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-12)


class Gallery:
    """One SQLite gallery file. Not shared between threads; open one per process or thread."""

    def __init__(self, path: Path | str | None = None, key: str | None = None, create: bool = True):
        self.path = Path(path).expanduser() if path else default_gallery_path()
        if not create and not self.path.exists():
            raise FacestreamError(f"no gallery at {self.path} (add someone first: facestream gallery add)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
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
        self._seen_version = -1

    # -- plumbing ----------------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _meta(self, key: str) -> bytes | str | int | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: bytes | str | int) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def bump_version(self) -> None:
        self.db.execute(
            "INSERT INTO meta(key, value) VALUES ('version', 1) "
            "ON CONFLICT(key) DO UPDATE SET value = value + 1"
        )

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

    def person_id(self, name: str) -> int | None:
        row = self.db.execute("SELECT id FROM people WHERE name=?", (name,)).fetchone()
        return row[0] if row else None

    def _require_person(self, name: str) -> int:
        pid = self.person_id(name)
        if pid is None:
            known = ", ".join(self.names()[:10]) or "nobody yet"
            raise FacestreamError(f"no person named {name!r} in the gallery (known: {known})")
        return pid

    # -- people ------------------------------------------------------------------------------------------

    def version(self) -> int:
        return int(self._meta("version") or 0)

    def names(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT name FROM people ORDER BY name")]

    def people(self) -> list[PersonInfo]:
        rows = self.db.execute(
            "SELECT p.name, p.created_ns, "
            "(SELECT COUNT(*) FROM embeddings e WHERE e.person_id = p.id), "
            "(SELECT COUNT(*) FROM rejections r WHERE r.person_id = p.id) "
            "FROM people p ORDER BY p.name"
        ).fetchall()
        return [PersonInfo(name=n, created_ns=c, embeddings=e, rejections=r) for n, c, e, r in rows]

    def enrol(self, name: str, items: Iterable[EnrolItem]) -> int:
        """Add a person (or more embeddings to one) in one transaction; returns how many were new.

        An embedding whose photo hash the person already has is skipped, so adding the same photo twice
        is harmless.
        """
        name = _check_name(name)
        items = list(items)
        added = 0
        now = time.time_ns()
        with self.transaction():
            pid = self.person_id(name)
            if pid is None:
                pid = self.db.execute(
                    "INSERT INTO people(name, created_ns) VALUES (?, ?)", (name, now)
                ).lastrowid
            have = {
                r[0]
                for r in self.db.execute(
                    "SELECT photo_sha256 FROM embeddings WHERE person_id=? AND photo_sha256 != ''", (pid,)
                )
            }
            for it in items:
                if it.photo_sha256 and it.photo_sha256 in have:
                    continue
                have.add(it.photo_sha256)
                self.db.execute(
                    "INSERT INTO embeddings(person_id, vector, quality, photo_sha256, source, created_ns) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (pid, self.pack_vector(it.embedding), float(it.quality), it.photo_sha256, it.source, now),
                )
                if it.crop_path:
                    self.db.execute("INSERT INTO crops(person_id, path) VALUES (?, ?)", (pid, it.crop_path))
                added += 1
            self.bump_version()
        return added

    def record_crop(self, name: str, path: str) -> None:
        """Remember a crop file stored for ``name`` so that :meth:`forget` deletes it."""
        with self.transaction():
            self.db.execute(
                "INSERT INTO crops(person_id, path) VALUES (?, ?)", (self._require_person(name), path)
            )

    def rename(self, old: str, new: str) -> None:
        new = _check_name(new)
        with self.transaction():
            pid = self._require_person(old)
            if self.person_id(new) is not None:
                raise FacestreamError(f"cannot rename {old!r} to {new!r}: {new!r} already exists")
            self.db.execute("UPDATE people SET name=? WHERE id=?", (new, pid))
            self.db.execute("UPDATE sightings SET name=? WHERE name=?", (new, old))
            self.bump_version()

    def remove(self, name: str) -> None:
        """Remove a person and their embeddings (crop files stay; use :meth:`forget` to erase everything)."""
        with self.transaction():
            pid = self._require_person(name)
            self.db.execute("DELETE FROM people WHERE id=?", (pid,))
            self.bump_version()

    def forget(self, name: str) -> list[str]:
        """Erase a person: embeddings, rejections, sightings and every crop file recorded for them.

        Returns the crop files deleted. Rows go first (one transaction), files after, so a crash in between
        leaves orphan files, never rows pointing at a person who should be gone.
        """
        with self.transaction():
            pid = self._require_person(name)
            paths = [r[0] for r in self.db.execute("SELECT path FROM crops WHERE person_id=?", (pid,))]
            paths += [
                r[0]
                for r in self.db.execute(
                    "SELECT crop_path FROM sightings WHERE name=? AND crop_path IS NOT NULL", (name,)
                )
            ]
            self.db.execute("DELETE FROM sightings WHERE name=?", (name,))
            self.db.execute("DELETE FROM people WHERE id=?", (pid,))
            self.bump_version()
        deleted = []
        for p in dict.fromkeys(paths):
            try:
                Path(p).unlink()
                deleted.append(p)
            except FileNotFoundError:
                pass
        return deleted

    def embeddings_of(self, name: str) -> np.ndarray:
        pid = self._require_person(name)
        rows = self.db.execute(
            "SELECT vector FROM embeddings WHERE person_id=? ORDER BY id", (pid,)
        ).fetchall()
        return np.stack([self.unpack_vector(r[0]) for r in rows]) if rows else np.zeros((0, 0), np.float32)

    # -- negative feedback and sightings -----------------------------------------------------------------

    def reject(self, ref: str, name: str) -> bool:
        """Store "track or event ``ref`` is not ``name``". Returns True when the sighting's embedding was found,
        so the matcher can also keep ``name`` off faces that look like it; False: only ``ref`` itself is blocked.
        """
        ref = ref.strip()
        if not ref:
            raise FacestreamError("reject needs a track or event id")
        with self.transaction():
            pid = self._require_person(name)
            row = self.db.execute(
                "SELECT vector FROM sightings WHERE (event_id=? OR track_ref=?) AND vector IS NOT NULL "
                "ORDER BY ts_ns DESC LIMIT 1",
                (ref, ref),
            ).fetchone()
            self.db.execute(
                "INSERT INTO rejections(ref, person_id, vector, created_ns) VALUES (?, ?, ?, ?)",
                (ref, pid, row[0] if row else None, time.time_ns()),
            )
            self.bump_version()
        return row is not None

    def record_sighting(
        self,
        event_id: str,
        track_ref: str,
        stream_id: str,
        ts_ns: int,
        embedding: np.ndarray | None,
        name: str | None = None,
        unknown_id: int | None = None,
        score: float | None = None,
        crop_path: str | None = None,
        keep: int = 100_000,
    ) -> None:
        """Remember an identification so an operator can later reject it by event or track id.

        Idempotent on ``event_id`` (a replay writes nothing new). Keeps the newest ``keep`` rows.
        Does not bump the version: sightings do not change matching until rejected.
        """
        with self.transaction():
            self.db.execute(
                "INSERT OR IGNORE INTO sightings(event_id, track_ref, stream_id, name, unknown_id, score, vector, "
                "crop_path, ts_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    event_id,
                    track_ref,
                    stream_id,
                    name,
                    unknown_id,
                    score,
                    None if embedding is None else self.pack_vector(embedding),
                    crop_path,
                    int(ts_ns),
                ),
            )
            # rowids grow with inserts: dropping those more than ``keep`` behind the newest is O(log n).
            self.db.execute(
                "DELETE FROM sightings WHERE rowid <= (SELECT MAX(rowid) FROM sightings) - ?", (int(keep),)
            )

    def sighting_count(self, unknown_id: int, since_ns: int = 0) -> int:
        return self.db.execute(
            "SELECT COUNT(DISTINCT track_ref) FROM sightings WHERE unknown_id=? AND ts_ns>=?",
            (unknown_id, since_ns),
        ).fetchone()[0]

    # -- snapshot and live reload ------------------------------------------------------------------------

    def snapshot(self) -> GallerySnapshot:
        """Everything the matcher needs, read in one read transaction."""
        self.db.execute("BEGIN")
        try:
            version = self.version()
            people = self.db.execute("SELECT id, name FROM people ORDER BY name").fetchall()
            index = {pid: i for i, (pid, _) in enumerate(people)}
            rows = self.db.execute("SELECT person_id, vector FROM embeddings ORDER BY id").fetchall()
            rej = self.db.execute(
                "SELECT r.ref, r.person_id, r.vector, p.name FROM rejections r JOIN people p ON p.id = r.person_id"
            ).fetchall()
        finally:
            self.db.execute("COMMIT")
        names = [n for _, n in people]
        vectors = [self.unpack_vector(v) for _, v in rows]
        dim = vectors[0].shape[0] if vectors else 0
        snap = GallerySnapshot(
            version=version,
            names=names,
            vectors=l2_normalise(np.stack(vectors)) if vectors else np.zeros((0, dim), np.float32),
            owner=np.array([index[p] for p, _ in rows], dtype=np.int64),
        )
        rej_vecs, rej_owner = [], []
        for ref, pid, vec, name in rej:
            snap.rejection_refs.setdefault(ref, set()).add(name)
            if vec is not None:
                rej_vecs.append(self.unpack_vector(vec))
                rej_owner.append(index[pid])
        if rej_vecs:
            snap.rejection_vectors = l2_normalise(np.stack(rej_vecs))
            snap.rejection_owner = np.array(rej_owner, dtype=np.int64)
        return snap

    def reload_if_changed(self) -> GallerySnapshot | None:
        """A new snapshot when the gallery changed since the last call (or on the first call), else None."""
        v = self.version()
        if v == self._seen_version:
            return None
        snap = self.snapshot()
        self._seen_version = snap.version
        return snap

    # -- export / import ---------------------------------------------------------------------------------

    def export_json(self, path: Path | str) -> int:
        """Write all people, embeddings and rejections as JSON (embeddings base64 float32, decrypted).

        The file holds biometric data in the clear; it is written with mode 0600. Returns people written.
        """
        people = []
        for info in self.people():
            pid = self.person_id(info.name)
            embs = [
                {
                    "vector": base64.b64encode(self.unpack_vector(v).astype("<f4").tobytes()).decode(),
                    "quality": q,
                    "photo_sha256": h,
                    "source": s,
                }
                for v, q, h, s in self.db.execute(
                    "SELECT vector, quality, photo_sha256, source FROM embeddings WHERE person_id=? ORDER BY id",
                    (pid,),
                )
            ]
            rejs = [
                {
                    "ref": ref,
                    "vector": None
                    if v is None
                    else base64.b64encode(self.unpack_vector(v).tobytes()).decode(),
                }
                for ref, v in self.db.execute("SELECT ref, vector FROM rejections WHERE person_id=?", (pid,))
            ]
            people.append({"name": info.name, "embeddings": embs, "rejections": rejs})
        doc = {"format": EXPORT_FORMAT, "version": 1, "people": people}
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=1)
        tmp.replace(path)
        return len(people)

    def import_json(self, path: Path | str) -> tuple[int, int]:
        """Merge an export into this gallery in one transaction; returns (people, embeddings) added."""
        try:
            doc = json.loads(Path(path).read_text())
        except FileNotFoundError as exc:
            raise FacestreamError(f"no such file: {path}") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise FacestreamError(f"{path} is not a facestream gallery export (not JSON: {exc})") from exc
        if not isinstance(doc, dict) or doc.get("format") != EXPORT_FORMAT:
            raise FacestreamError(
                f"{path} is not a facestream gallery export (format is not {EXPORT_FORMAT!r})"
            )
        new_people = new_embs = 0
        now = time.time_ns()
        with self.transaction():
            for person in doc.get("people", []):
                name = _check_name(person.get("name", ""))
                pid = self.person_id(name)
                if pid is None:
                    pid = self.db.execute(
                        "INSERT INTO people(name, created_ns) VALUES (?, ?)", (name, now)
                    ).lastrowid
                    new_people += 1
                have = {
                    r[0]
                    for r in self.db.execute("SELECT photo_sha256 FROM embeddings WHERE person_id=?", (pid,))
                }
                for e in person.get("embeddings", []):
                    if e.get("photo_sha256") and e["photo_sha256"] in have:
                        continue
                    vec = np.frombuffer(base64.b64decode(e["vector"]), dtype="<f4")
                    self.db.execute(
                        "INSERT INTO embeddings(person_id, vector, quality, photo_sha256, source, created_ns) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            pid,
                            self.pack_vector(vec),
                            float(e.get("quality", 0.0)),
                            e.get("photo_sha256", ""),
                            e.get("source", ""),
                            now,
                        ),
                    )
                    new_embs += 1
                for r in person.get("rejections", []):
                    if self.db.execute(
                        "SELECT 1 FROM rejections WHERE ref=? AND person_id=?", (r["ref"], pid)
                    ).fetchone():
                        continue
                    vec = r.get("vector")
                    blob = (
                        None
                        if vec is None
                        else self.pack_vector(np.frombuffer(base64.b64decode(vec), dtype="<f4"))
                    )
                    self.db.execute(
                        "INSERT INTO rejections(ref, person_id, vector, created_ns) VALUES (?, ?, ?, ?)",
                        (r["ref"], pid, blob, now),
                    )
            self.bump_version()
        return new_people, new_embs
