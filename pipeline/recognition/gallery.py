"""The gallery: known people, their embeddings, negative feedback, sightings and unknown clusters.

Storage, transactions and encryption are :class:`~.gallery_db.GalleryDB` over a store (:mod:`.gallery_store`:
a SQLite file by default, or a shared PostgreSQL database for a ``postgresql://`` location, :mod:`.gallery_pg`);
this module holds what is stored, the same on both. Every embedding enters through :meth:`Gallery.enrol` (photos, the demo, an import, a promoted unknown),
which checks each one is a finite 128-d vector.

Live reload: every change that matters to matching (people, embeddings, rejections, unknown clusters changed
by an operator) bumps a ``version`` row in ``meta``; a running pipeline calls :meth:`Gallery.reload_if_changed`
once in a while and gets a fresh :class:`GallerySnapshot` only when the number moved (on PostgreSQL: when a
NOTIFY said so, see :mod:`.gallery_pg`; while the database is unreachable it keeps the snapshot it has).

Encryption: when ``$FACESTREAM_GALLERY_KEY`` is set at creation, every stored vector (embeddings, rejections,
sightings, unknown clusters) is Fernet-encrypted; opening such a gallery needs the same key.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facestream.engines.faces.vectors import l2_normalise
from facestream.errors import FacestreamError

from .gallery_db import GALLERY_ENV, GalleryDB, check_name, default_gallery_path, embedding_problem
from .gallery_pg import GalleryUnavailable
from .unknown_table import UnknownTable

__all__ = ["GALLERY_ENV", "EnrolItem", "Gallery", "GallerySnapshot", "PersonInfo", "default_gallery_path"]
log = logging.getLogger(__name__)


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
class StoredEmbedding:
    vector: np.ndarray
    quality: float
    photo_sha256: str
    source: str


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


class Gallery(GalleryDB):
    """One gallery (file or database). Not shared between threads; open one per process or thread."""

    def __init__(self, path: Path | str | None = None, key: str | None = None, create: bool = True):
        super().__init__(path, key, create)
        self.unknown_table = UnknownTable(self)
        self._seen_version = -1

    # -- people ------------------------------------------------------------------------------------------

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
        is harmless. An embedding that is not a finite 128-d vector is refused (FacestreamError, nothing stored).
        """
        name = check_name(name)
        items = list(items)
        for k, it in enumerate(items):
            problem = embedding_problem(it.embedding)
            if problem:
                raise FacestreamError(f"embedding {k + 1} for {name!r}: {problem}")
        added = 0
        now = time.time_ns()
        with self.transaction():
            pid = self.person_id(name)
            if pid is None:
                pid = self.store.insert_id("INSERT INTO people(name, created_ns) VALUES (?, ?)", (name, now))
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

    def crops_of(self, name: str) -> list[str]:
        """Crop files recorded for ``name`` (enrolment photos, named unknowns), oldest first."""
        return [r[0] for r in self.db.execute("SELECT path FROM crops WHERE person_id=? ORDER BY id",
                                              (self._require_person(name),))]

    def rename(self, old: str, new: str) -> None:
        new = check_name(new)
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

    def stored_embeddings(self, name: str) -> list[StoredEmbedding]:
        """A person's embeddings as stored (not normalised), oldest first; corrupt rows skipped."""
        rows = self.db.execute(
            "SELECT id, vector, quality, photo_sha256, source FROM embeddings WHERE person_id=? ORDER BY id",
            (self._require_person(name),),
        ).fetchall()
        out = []
        for rid, blob, q, sha, src in rows:
            v = self.read_vector(blob, "embeddings", rid)
            if v is not None:
                out.append(StoredEmbedding(v, q, sha, src))
        return out

    def embeddings_of(self, name: str) -> np.ndarray:
        vectors = [e.vector for e in self.stored_embeddings(name)]
        return np.stack(vectors) if vectors else np.zeros((0, 0), np.float32)

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

    def add_rejection(self, name: str, ref: str, vector: np.ndarray | None) -> bool:
        """Store a rejection read from an export unless ``name`` already has one for ``ref``; True if new."""
        with self.transaction():
            pid = self._require_person(name)
            if self.db.execute("SELECT 1 FROM rejections WHERE ref=? AND person_id=?", (ref, pid)).fetchone():
                return False
            blob = None if vector is None else self.pack_vector(vector)
            self.db.execute(
                "INSERT INTO rejections(ref, person_id, vector, created_ns) VALUES (?, ?, ?, ?)",
                (ref, pid, blob, time.time_ns()),
            )
            self.bump_version()
        return True

    def rejections_of(self, name: str) -> list[tuple[str, np.ndarray | None]]:
        """(ref, embedding or None) of every rejection of ``name``; a corrupt vector reads as None."""
        rows = self.db.execute(
            "SELECT id, ref, vector FROM rejections WHERE person_id=?", (self._require_person(name),)
        ).fetchall()
        return [(ref, None if v is None else self.read_vector(v, "rejections", rid)) for rid, ref, v in rows]

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
        Does not bump the version: sightings do not change matching until rejected. A shared database that is
        unreachable loses the sighting (logged), the pipeline carries on.
        """
        try:
            self._record_sighting(event_id, track_ref, stream_id, ts_ns, embedding, name, unknown_id, score,
                                  crop_path, keep)
        except GalleryUnavailable as exc:
            log.warning("gallery: sighting %s not recorded: %s", event_id, exc)

    def _record_sighting(self, event_id, track_ref, stream_id, ts_ns, embedding, name, unknown_id, score,
                         crop_path, keep) -> None:
        with self.transaction():
            self.db.execute(
                "INSERT INTO sightings(event_id, track_ref, stream_id, name, unknown_id, score, vector, "
                "crop_path, ts_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
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
            rowid = self.store.rowid
            self.db.execute(
                f"DELETE FROM sightings WHERE {rowid} <= (SELECT MAX({rowid}) FROM sightings) - ?", (int(keep),)
            )

    def sighting_count(self, unknown_id: int, since_ns: int = 0) -> int:
        return self.db.execute(
            "SELECT COUNT(DISTINCT track_ref) FROM sightings WHERE unknown_id=? AND ts_ns>=?",
            (unknown_id, since_ns),
        ).fetchone()[0]

    def relabel_sightings(self, unknown_id: int, name: str) -> None:
        """The sightings of ``unknown#unknown_id`` are now of ``name`` (the cluster was promoted)."""
        with self.transaction():
            self.db.execute(
                "UPDATE sightings SET name=?, unknown_id=NULL WHERE unknown_id=?", (name, unknown_id)
            )

    # -- snapshot and live reload ------------------------------------------------------------------------

    def snapshot(self) -> GallerySnapshot:
        """Everything the matcher needs, read in one read transaction. Corrupt vectors are skipped."""
        with self.store.reading():
            version = self.version()
            people = self.db.execute("SELECT id, name FROM people ORDER BY name").fetchall()
            rows = self.db.execute("SELECT id, person_id, vector FROM embeddings ORDER BY id").fetchall()
            rej = self.db.execute(
                "SELECT r.id, r.ref, r.person_id, r.vector, p.name "
                "FROM rejections r JOIN people p ON p.id = r.person_id"
            ).fetchall()
        index = {pid: i for i, (pid, _) in enumerate(people)}
        vectors, owner = [], []
        for rid, pid, blob in rows:
            v = self.read_vector(blob, "embeddings", rid)
            if v is not None:
                vectors.append(v)
                owner.append(index[pid])
        snap = GallerySnapshot(
            version=version,
            names=[n for _, n in people],
            vectors=l2_normalise(np.stack(vectors)) if vectors else np.zeros((0, 0), np.float32),
            owner=np.array(owner, dtype=np.int64),
        )
        rej_vecs, rej_owner = [], []
        for rid, ref, pid, blob, name in rej:
            snap.rejection_refs.setdefault(ref, set()).add(name)
            v = None if blob is None else self.read_vector(blob, "rejections", rid)
            if v is not None:
                rej_vecs.append(v)
                rej_owner.append(index[pid])
        if rej_vecs:
            snap.rejection_vectors = l2_normalise(np.stack(rej_vecs))
            snap.rejection_owner = np.array(rej_owner, dtype=np.int64)
        return snap

    def reload_if_changed(self) -> GallerySnapshot | None:
        """A new snapshot when the gallery changed since the last call (or on the first call), else None.

        On a shared database also when another host added an unknown cluster; None while the database is
        unreachable (the caller keeps matching against what it has; the next call tries again)."""
        try:
            if not self.store.changed_since(self._seen_version):
                return None
            snap = self.snapshot()
        except GalleryUnavailable as exc:
            log.warning("gallery: keeping the gallery loaded last: %s", exc)
            self._seen_version = -1  # re-read once it is back
            return None
        self._seen_version = snap.version
        return snap

    # -- export / import (the format is gallery_export's) ------------------------------------------------

    def export_json(self, path: Path | str) -> int:
        """Write all people, embeddings and rejections as JSON (mode 0600); returns people written."""
        from .gallery_export import export_gallery

        return export_gallery(self, path)

    def import_json(self, path: Path | str) -> tuple[int, int]:
        """Merge an export into this gallery in one transaction; returns (people, embeddings) added."""
        from .gallery_export import import_gallery

        return import_gallery(self, path)
