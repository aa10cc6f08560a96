"""The face library behind the web app: the same gallery code as ``facestream gallery`` (recognition package),
plus what the sink wrote (events store, crops) to show faces beside names.

Every call opens the gallery for its own duration (a gallery connection belongs to one thread) and returns plain
dicts for JSON. Changes bump the gallery's version, so a running pipeline picks them up within a second or so.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from facestream.errors import FacestreamError

from ..config import PipelineConfig
from ..events_store import EventQuery, EventsStore
from ..recognition.gallery import Gallery, default_gallery_path
from .files import OutFiles

THUMB_SIDE = 320
CROPS_SHOWN = 6


class ApiError(Exception):
    """An HTTP error with a one-line message (``{"error": message}``)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class EventsReader:
    """The sink's events store, opened read-only when it appears; one connection shared under a lock."""

    def __init__(self, path: Path):
        self.path = path
        self._store: EventsStore | None = None
        self._lock = threading.Lock()

    def _open(self) -> EventsStore | None:
        if self._store is None and self.path.is_file():
            try:
                self._store = EventsStore(self.path, readonly=True)
            except FacestreamError:
                return None
        return self._store

    def query(self, q: EventQuery) -> list[dict[str, Any]]:
        with self._lock:
            store = self._open()
            return store.query(q) if store else []

    def get(self, event_id: str) -> dict[str, Any] | None:
        with self._lock:
            store = self._open()
            return store.get(event_id) if store else None

    def count(self) -> int:
        with self._lock:
            store = self._open()
            return store.count() if store else 0

    def cameras(self) -> list[str]:
        with self._lock:
            store = self._open()
            return store.cameras() if store else []

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None


class Library:
    def __init__(self, cfg: PipelineConfig, files: OutFiles, events: EventsReader):
        self.gallery_path = Path(cfg.inference.gallery).expanduser() if cfg.inference.gallery else default_gallery_path()
        self.out_dir = Path(cfg.sink.out_dir)
        self.detector = cfg.inference.detector.type
        self.models_dir = cfg.inference.models_dir
        self.files, self.events = files, events
        self._enroller = None
        self._enrol_lock = threading.Lock()

    @contextmanager
    def _gallery(self, create: bool = False):
        if not create and not self.gallery_path.exists():
            yield None
            return
        with Gallery(self.gallery_path, create=True) as g:
            yield g

    def _require(self, g: Gallery | None, name: str) -> Gallery:
        if g is None or g.person_id(name) is None:
            raise ApiError(404, f"no person named {name!r} in the gallery")
        return g

    def _crop_urls(self, q: EventQuery) -> list[str]:
        urls = [self.files.url(e.get("best_shot_path")) for e in self.events.query(q)]
        return list(dict.fromkeys(u for u in urls if u))[:CROPS_SHOWN]

    # -- people ------------------------------------------------------------------------------------------

    def people(self) -> list[dict[str, Any]]:
        with self._gallery() as g:
            if g is None:
                return []
            out = []
            for p in g.people():
                stored = g.stored_embeddings(p.name)
                quality = sum(e.quality for e in stored) / len(stored) if stored else None
                photos = [u for u in (self.files.url(c) for c in g.crops_of(p.name)) if u]
                photos += self._crop_urls(EventQuery(person=p.name, limit=20))
                out.append({"name": p.name, "embeddings": p.embeddings, "rejections": p.rejections,
                            "created_ns": p.created_ns, "quality": None if quality is None else round(quality, 3),
                            "photos": list(dict.fromkeys(photos))[:CROPS_SHOWN]})
            return out

    def _enroller_for_upload(self):
        if self._enroller is None:
            from facestream.engines.store import ModelStore

            from ..recognition.enrolment import PhotoEnroller

            self._enroller = PhotoEnroller(self.detector, store=ModelStore(self.models_dir or None))
        return self._enroller

    def enrol(self, name: str, photos: list[tuple[str, bytes]]) -> dict[str, Any]:
        """``gallery add`` of uploaded photos (the same quality gate); a thumbnail of each enrolled photo is kept
        under out_dir/library/ and recorded as the person's crop (``forget`` deletes it)."""
        import hashlib

        from ..recognition.enrolment import collect_items, store_items

        try:
            name = _checked_name(name)
        except FacestreamError as exc:
            raise ApiError(400, str(exc)) from None
        with self._enrol_lock:  # one detector, not thread-safe
            items, refused = collect_items(self._enroller_for_upload(), list(photos))
        if not items:
            raise ApiError(400, f"no usable photo of {name}: " + "; ".join(refused))
        by_sha = {hashlib.sha256(data).hexdigest(): data for _, data in photos}
        for item in items:
            item.crop_path = self._thumbnail(name, item.photo_sha256, by_sha.get(item.photo_sha256, b""))
        added, total = store_items(self.gallery_path, name, items, len(refused))
        return {"name": name, "added": added, "embeddings": total, "refused": refused}

    def _thumbnail(self, name: str, sha: str, data: bytes) -> str | None:
        """One file per person and photo, so forgetting one person never deletes another's picture."""
        import hashlib

        import cv2
        import numpy as np

        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
        if img is None:
            return None
        scale = min(1.0, THUMB_SIDE / max(img.shape[:2]))
        if scale < 1:
            img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        owner = hashlib.sha256(name.encode()).hexdigest()[:12]
        path = self.out_dir / "library" / f"{owner}-{sha[:32]}.jpg"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(path), img):
                return None
        except OSError:
            return None
        return str(path.resolve())

    def rename(self, old: str, new: str) -> dict[str, Any]:
        with self._gallery() as g:
            self._require(g, old).rename(old, new)
        return {"name": new.strip(), "was": old}

    def forget(self, name: str) -> dict[str, Any]:
        from ..forgetting import forget_everywhere

        with self._gallery() as g:
            report = forget_everywhere(self._require(g, name), name, self.out_dir)
        return {"forgot": name, "crops_deleted": len(report.crops), "lines_redacted": report.lines,
                "events_deleted": report.events, "event_files_deleted": report.event_files}

    def reject(self, ref: str, name: str) -> dict[str, Any]:
        with self._gallery() as g:
            similar = self._require(g, name).reject(ref, name)
        return {"ref": ref, "not": name, "similar_blocked": similar}

    # -- unknowns ----------------------------------------------------------------------------------------

    def unknowns(self) -> list[dict[str, Any]]:
        from ..recognition.unknowns import list_unknowns

        with self._gallery() as g:
            rows = list_unknowns(g) if g is not None else []
        for row in rows:
            row["crops"] = self._crop_urls(EventQuery(unknown_id=row["id"], limit=20))
        return sorted(rows, key=lambda r: -r["last_ns"])

    def _require_unknown(self, g: Gallery | None, uid: int) -> Gallery:
        if g is None or uid not in {r[0] for r in g.unknown_table.summaries()}:
            raise ApiError(404, f"no unknown#{uid} in the gallery")
        return g

    def name_unknown(self, uid: int, name: str) -> dict[str, Any]:
        from ..recognition.unknowns import promote

        with self._gallery() as g:
            added = promote(self._require_unknown(g, uid), uid, name)
        return {"unknown_id": uid, "name": name.strip(), "added": added}

    def dismiss_unknown(self, uid: int) -> dict[str, Any]:
        from ..recognition.unknowns import dismiss

        with self._gallery() as g:
            dismiss(self._require_unknown(g, uid), uid)
        return {"dismissed": uid}

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": str(self.gallery_path), "exists": self.gallery_path.exists()}
        try:
            with self._gallery() as g:
                if g is not None:
                    people = g.people()
                    out.update(people=len(people), embeddings=sum(p.embeddings for p in people),
                               unknowns=len(g.unknown_table.summaries()), encrypted=g.encrypted)
        except FacestreamError as exc:
            out["error"] = str(exc)
        return out


def _checked_name(name: str) -> str:
    from ..recognition.gallery_db import check_name

    return check_name(name)
