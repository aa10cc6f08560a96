"""Persistent anonymous ids for unknown faces: online clustering of unknown tracks, stored in the gallery.

Each unknown track's aggregated embedding joins the nearest cluster when cosine >= ``join_threshold``,
else starts a new one, so "unknown #7 seen 5 times today" survives restarts. A cluster keeps a running
centroid and its best few member embeddings; :func:`promote` turns a cluster into a named person with those
embeddings. Ids come from an AUTOINCREMENT column (PostgreSQL: an identity sequence) and are never reused.

On a shared gallery (PostgreSQL) the ids are global: before creating a cluster, :meth:`UnknownClusters.assign`
loads, under the gallery's write lock, the clusters other hosts created since it last looked, and joins one of
them when it matches; so the same stranger gets the same id on every camera and host. A cluster's centroid and
``seen`` count are written by whichever host saw the face last (last writer wins).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from facestream.engines.faces.vectors import l2_normalise
from facestream.errors import FacestreamError

from .gallery import EnrolItem, Gallery
from .gallery_db import check_name
from .gallery_pg import GalleryUnavailable

DEFAULT_JOIN_THRESHOLD = 0.92
MEMBERS_KEPT = 5
# The centroid follows new sightings with weight 1/min(seen, CENTROID_MEMORY): stable, yet not frozen.
CENTROID_MEMORY = 20
log = logging.getLogger(__name__)


@dataclass
class UnknownCluster:
    unknown_id: int
    centroid: np.ndarray
    seen: int
    first_ns: int
    last_ns: int
    members: list[tuple[float, np.ndarray]] = field(default_factory=list)  # (quality, embedding)

    @property
    def label(self) -> str:
        return f"unknown#{self.unknown_id}"


def parse_unknown_id(text: str) -> int:
    """'7', '#7', 'unknown#7' -> 7."""
    t = text.strip().lower().removeprefix("unknown").lstrip("#").strip()
    if not t.isdigit():
        raise FacestreamError(f"not an unknown id: {text!r} (expected e.g. 7 or unknown#7)")
    return int(t)


class UnknownClusters:
    """The clusters of one gallery, held in memory and written through to SQLite."""

    def __init__(self, gallery: Gallery, join_threshold: float = DEFAULT_JOIN_THRESHOLD):
        self.gallery = gallery
        self.join_threshold = join_threshold
        self.clusters: dict[int, UnknownCluster] = {}
        self.reload()

    def reload(self) -> None:
        self.clusters = {
            c.unknown_id: UnknownCluster(c.unknown_id, l2_normalise(c.centroid), c.seen, c.first_ns, c.last_ns,
                                         c.members)
            for c in self.gallery.unknown_table.load()
        }

    def nearest(self, embedding: np.ndarray) -> tuple[int | None, float]:
        if not self.clusters:
            return None, float("-inf")
        ids = list(self.clusters)
        sims = np.stack([self.clusters[i].centroid for i in ids]) @ l2_normalise(embedding)
        best = int(np.argmax(sims))
        return ids[best], float(sims[best])

    def assign(
        self, embedding: np.ndarray, quality: float, ts_ns: int, new_sighting: bool = True
    ) -> UnknownCluster | None:
        """Put one unknown track's embedding in a cluster (joining or creating); returns the cluster.

        ``new_sighting=False`` refines the cluster for a track already counted (its identity was re-checked).
        While a shared gallery is unreachable a face joins a cluster already held here (in memory only), and a
        face that would start a new one gets None (the caller calls it plain "unknown").
        """
        try:
            return self._assign(embedding, quality, ts_ns, new_sighting)
        except GalleryUnavailable as exc:
            log.warning("unknown clusters: %s", exc)
            uid, sim = self.nearest(l2_normalise(embedding))
            return self.clusters[uid] if uid is not None and sim >= self.join_threshold else None

    def _assign(self, embedding: np.ndarray, quality: float, ts_ns: int, new_sighting: bool) -> UnknownCluster:
        table = self.gallery.unknown_table
        emb = l2_normalise(embedding)
        uid, sim = self.nearest(emb)
        with self.gallery.transaction():
            if (uid is None or sim < self.join_threshold) and self.gallery.shared:
                self._catch_up()  # another host may have met this face first
                uid, sim = self.nearest(emb)
            if uid is None or sim < self.join_threshold:
                uid = table.create(emb, ts_ns)
                cluster = UnknownCluster(uid, emb, 1, ts_ns, ts_ns)
                self.clusters[uid] = cluster
            else:
                cluster = self.clusters[uid]
                if new_sighting:
                    cluster.seen += 1
                w = 1.0 / min(max(cluster.seen, 2), CENTROID_MEMORY)
                cluster.centroid = l2_normalise((1 - w) * cluster.centroid + w * emb)
                cluster.last_ns = max(cluster.last_ns, ts_ns)
                table.update(uid, cluster.centroid, cluster.seen, cluster.last_ns)
            self._keep_member(cluster, float(quality), emb)
        return cluster

    def _catch_up(self) -> None:
        """Load the clusters created (by other hosts) since the newest one held here."""
        newest = max(self.clusters, default=0)
        for c in self.gallery.unknown_table.load(after_id=newest):
            self.clusters[c.unknown_id] = UnknownCluster(c.unknown_id, l2_normalise(c.centroid), c.seen,
                                                         c.first_ns, c.last_ns, c.members)

    def _keep_member(self, cluster: UnknownCluster, quality: float, emb: np.ndarray) -> None:
        cluster.members.append((quality, emb))
        cluster.members.sort(key=lambda m: -m[0])
        del cluster.members[MEMBERS_KEPT:]
        if not any(v is emb for _, v in cluster.members):
            return  # not among the best shots: the stored members stay as they are
        self.gallery.unknown_table.set_members(cluster.unknown_id, cluster.members)


def list_unknowns(gallery: Gallery, since_ns: int | None = None) -> list[dict]:
    """Rows for ``facestream gallery unknowns``: id, seen (tracks), seen since ``since_ns`` (default: today)."""
    if since_ns is None:
        lt = time.localtime()
        since_ns = int(time.mktime((lt.tm_year, lt.tm_mon, lt.tm_mday, 0, 0, 0, 0, 0, -1)) * 1e9)
    rows = gallery.unknown_table.summaries()
    return [
        {
            "id": uid,
            "label": f"unknown#{uid}",
            "seen": seen,
            "seen_today": gallery.sighting_count(uid, since_ns),
            "first_ns": first,
            "last_ns": last,
        }
        for uid, seen, first, last in rows
    ]


def promote(gallery: Gallery, unknown_id: int, name: str) -> int:
    """Name an unknown cluster: its member embeddings join person ``name`` (created if new, through
    :meth:`Gallery.enrol`), its sightings are relabelled, and the cluster is deleted, all in one transaction.
    Returns embeddings added.
    """
    name = check_name(name)
    source = f"unknown#{unknown_id}"
    with gallery.transaction():
        members = gallery.unknown_table.members(unknown_id)
        added = gallery.enrol(name, [EnrolItem(v, q, source=source) for q, v in members])
        gallery.relabel_sightings(unknown_id, name)
        gallery.unknown_table.delete(unknown_id)
    return added


def dismiss(gallery: Gallery, unknown_id: int) -> None:
    """Drop an unknown cluster an operator does not care about (its sightings stay until retention). The
    running pipeline re-reads the clusters (the version moves), so the face gets a new id if seen again."""
    with gallery.transaction():
        gallery.unknown_table.members(unknown_id)  # FacestreamError when there is no such cluster
        gallery.unknown_table.delete(unknown_id)
        gallery.bump_version()
