"""The gallery's ``unknowns`` and ``unknown_members`` tables: anonymous clusters of unknown faces, as stored.

The clustering itself is :mod:`.unknowns`; this module only reads and writes the rows (vectors packed and
encrypted like every other gallery vector; a corrupt one is skipped, see ``GalleryDB.read_vector``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from facestream.errors import FacestreamError

if TYPE_CHECKING:
    from .gallery_db import GalleryDB


@dataclass
class StoredCluster:
    unknown_id: int
    centroid: np.ndarray
    seen: int
    first_ns: int
    last_ns: int
    members: list[tuple[float, np.ndarray]] = field(default_factory=list)  # (quality, embedding)


class UnknownTable:
    def __init__(self, gallery: GalleryDB):
        self.g = gallery

    def load(self, after_id: int = 0) -> list[StoredCluster]:
        """Every cluster (with an id above ``after_id``) with its stored members, by id; a cluster whose centroid
        is corrupt is left out."""
        g = self.g
        clusters: dict[int, StoredCluster] = {}
        for uid, blob, seen, first, last in g.db.execute(
            "SELECT id, centroid, seen, first_ns, last_ns FROM unknowns WHERE id > ? ORDER BY id", (after_id,)
        ):
            centroid = g.read_vector(blob, "unknowns", uid)
            if centroid is not None:
                clusters[uid] = StoredCluster(uid, centroid, seen, first, last)
        for mid, uid, blob, q in g.db.execute(
            "SELECT id, unknown_id, vector, quality FROM unknown_members WHERE unknown_id > ? ORDER BY id",
            (after_id,),
        ):
            if uid in clusters:
                v = g.read_vector(blob, "unknown_members", mid)
                if v is not None:
                    clusters[uid].members.append((q, v))
        return list(clusters.values())

    def create(self, centroid: np.ndarray, ts_ns: int) -> int:
        """A new cluster seen once at ``ts_ns``; returns its id (never one used before)."""
        with self.g.transaction() as db:
            uid = db.insert_id(
                "INSERT INTO unknowns(centroid, seen, first_ns, last_ns) VALUES (?, 1, ?, ?)",
                (self.g.pack_vector(centroid), ts_ns, ts_ns),
            )
            db.notify("unknowns")  # other hosts sharing the database load it (gallery_pg)
            return uid

    def update(self, unknown_id: int, centroid: np.ndarray, seen: int, last_ns: int) -> None:
        with self.g.transaction() as db:
            db.execute(
                "UPDATE unknowns SET centroid=?, seen=?, last_ns=? WHERE id=?",
                (self.g.pack_vector(centroid), seen, last_ns, unknown_id),
            )

    def set_members(self, unknown_id: int, members: list[tuple[float, np.ndarray]]) -> None:
        """Replace the stored (quality, embedding) members of a cluster."""
        with self.g.transaction() as db:
            db.execute("DELETE FROM unknown_members WHERE unknown_id=?", (unknown_id,))
            db.executemany(
                "INSERT INTO unknown_members(unknown_id, vector, quality) VALUES (?, ?, ?)",
                [(unknown_id, self.g.pack_vector(v), q) for q, v in members],
            )

    def summaries(self) -> list[tuple[int, int, int, int]]:
        """(id, seen, first_ns, last_ns) of every cluster, by id."""
        return self.g.db.execute("SELECT id, seen, first_ns, last_ns FROM unknowns ORDER BY id").fetchall()

    def members(self, unknown_id: int) -> list[tuple[float, np.ndarray]]:
        """(quality, embedding) of a cluster's stored members, best first; FacestreamError if no such cluster."""
        g = self.g
        if not g.db.execute("SELECT 1 FROM unknowns WHERE id=?", (unknown_id,)).fetchone():
            raise FacestreamError(f"no unknown#{unknown_id} in the gallery (see: facestream gallery unknowns)")
        rows = g.db.execute(
            "SELECT id, vector, quality FROM unknown_members WHERE unknown_id=? ORDER BY quality DESC",
            (unknown_id,),
        ).fetchall()
        found = [(q, g.read_vector(blob, "unknown_members", mid)) for mid, blob, q in rows]
        return [(q, v) for q, v in found if v is not None]

    def delete(self, unknown_id: int) -> None:
        with self.g.transaction() as db:
            db.execute("DELETE FROM unknowns WHERE id=?", (unknown_id,))
