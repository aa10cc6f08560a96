"""The gallery's JSON export format, ``facestream-gallery`` version 1, and its import.

::

    {"format": "facestream-gallery", "version": 1, "people": [
        {"name": "Ada", "embeddings": [{"vector": "<base64 of 128 little-endian float32>", "quality": 0.9,
                                         "photo_sha256": "...", "source": "ada.jpg"}],
         "rejections": [{"ref": "t-...", "vector": "<base64>" or null}]}]}

An export holds the embeddings in the clear and is written with mode 0600. An import is checked whole before
anything is written (a wrong-length vector, bad base64, a missing field: one error naming the row), then
merged in one transaction through :meth:`Gallery.enrol`.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facestream.engines.faces.vectors import EMBEDDING_SIZE
from facestream.errors import FacestreamError
from facestream.fsutil import atomic_write

from .gallery import EnrolItem
from .gallery_db import check_name, embedding_problem

if TYPE_CHECKING:
    from .gallery import Gallery

EXPORT_FORMAT = "facestream-gallery"
EXPORT_VERSION = 1


def _encode(vector: np.ndarray) -> str:
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()


def export_gallery(gallery: Gallery, path: Path | str) -> int:
    """Write every person, embedding and rejection of ``gallery`` to ``path``; returns people written."""
    people = []
    for name in gallery.names():
        embs = [
            {"vector": _encode(e.vector), "quality": e.quality, "photo_sha256": e.photo_sha256, "source": e.source}
            for e in gallery.stored_embeddings(name)
        ]
        rejs = [{"ref": ref, "vector": None if v is None else _encode(v)} for ref, v in gallery.rejections_of(name)]
        people.append({"name": name, "embeddings": embs, "rejections": rejs})
    doc = {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "people": people}
    atomic_write(path, json.dumps(doc, indent=1), private=True)
    return len(people)


@dataclass
class _Person:
    name: str
    items: list[EnrolItem]
    rejections: list[tuple[str, np.ndarray | None]]


def _decode(text: Any, where: str) -> np.ndarray:
    if not isinstance(text, str):
        raise FacestreamError(f"{where}: vector is not a base64 string")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FacestreamError(f"{where}: vector is not valid base64 ({exc})") from exc
    if len(raw) != 4 * EMBEDDING_SIZE:
        raise FacestreamError(
            f"{where}: vector has {len(raw)} bytes, not {EMBEDDING_SIZE} float32 ({4 * EMBEDDING_SIZE} bytes)"
        )
    vector = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    problem = embedding_problem(vector)
    if problem:
        raise FacestreamError(f"{where}: vector is {problem}")
    return vector


def _text(row: dict, key: str, where: str) -> str:
    value = row.get(key, "")
    if not isinstance(value, str):
        raise FacestreamError(f"{where}: {key!r} is not a string")
    return value


def _person(entry: Any, where: str) -> _Person:
    if not isinstance(entry, dict):
        raise FacestreamError(f"{where}: not an object")
    raw_name = entry.get("name", "")
    try:
        name = check_name(raw_name if isinstance(raw_name, str) else "")
    except FacestreamError as exc:
        raise FacestreamError(f"{where}: {exc}") from None
    where = f"{where} ({name!r})"
    embeddings, rejections = entry.get("embeddings", []), entry.get("rejections", [])
    if not isinstance(embeddings, list) or not isinstance(rejections, list):
        raise FacestreamError(f"{where}: 'embeddings' and 'rejections' must be lists")
    items = []
    for j, e in enumerate(embeddings):
        at = f"{where}, embedding {j + 1}"
        if not isinstance(e, dict):
            raise FacestreamError(f"{at}: not an object")
        quality = e.get("quality", 0.0)
        if isinstance(quality, bool) or not isinstance(quality, int | float) or not np.isfinite(quality):
            raise FacestreamError(f"{at}: quality is not a number")
        items.append(EnrolItem(_decode(e.get("vector"), at), float(quality), _text(e, "photo_sha256", at),
                               _text(e, "source", at)))
    rejs = []
    for j, r in enumerate(rejections):
        at = f"{where}, rejection {j + 1}"
        if not isinstance(r, dict) or not isinstance(r.get("ref"), str) or not r["ref"].strip():
            raise FacestreamError(f"{at}: needs a non-empty 'ref'")
        vec = r.get("vector")
        rejs.append((r["ref"], None if vec is None else _decode(vec, at)))
    return _Person(name, items, rejs)


def read_export(path: Path | str) -> list[_Person]:
    """The people of an export file, every row checked; FacestreamError naming the first bad one."""
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise FacestreamError(f"no such file: {path}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FacestreamError(f"{path} is not a facestream gallery export (not JSON: {exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != EXPORT_FORMAT:
        raise FacestreamError(f"{path} is not a facestream gallery export (format is not {EXPORT_FORMAT!r})")
    people = doc.get("people", [])
    if not isinstance(people, list):
        raise FacestreamError(f"{path}: 'people' is not a list")
    return [_person(entry, f"{path}: person {i + 1}") for i, entry in enumerate(people)]


def import_gallery(gallery: Gallery, path: Path | str) -> tuple[int, int]:
    """Merge an export into ``gallery`` in one transaction; returns (people, embeddings) added."""
    people = read_export(path)
    new_people = new_embs = 0
    with gallery.transaction():
        for person in people:
            new_people += gallery.person_id(person.name) is None
            new_embs += gallery.enrol(person.name, person.items)
            for ref, vector in person.rejections:
                gallery.add_rejection(person.name, ref, vector)
    return new_people, new_embs
