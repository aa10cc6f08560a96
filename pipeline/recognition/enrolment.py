"""Enrolment: a photo (or an RGB image) -> one face embedding fit to be stored, or the reason it is refused.

Every way into the gallery that starts from an image goes through :class:`PhotoEnroller` (``facestream gallery
add``, the demo's gallery), so the same quality gate applies: one face, large, sharp and frontal enough
(``facestream.engines.faces.quality.is_enrolable``). The embeddings are then stored by ``Gallery.enrol``.

Photos are untrusted input: size limits are checked from the file header before decoding, so a small file
that declares a gigantic image is refused without allocating it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from facestream.engines.faces.detector_specs import DEFAULT_DETECTOR
from facestream.errors import FacestreamError
from facestream.image_files import decode_with_pillow

from ..image_header import declared_size
from .gallery import EnrolItem
from .stills import StillAnalyzers

MAX_PHOTO_BYTES = 30 * 1024 * 1024
MAX_PHOTO_PIXELS = 60_000_000
DETECT_MAX_SIDE = 1600


def read_photo(path: Path) -> tuple[np.ndarray, str]:
    """RGB uint8 image (longer side at most DETECT_MAX_SIDE) and the sha256 of the file."""
    rgb, _, sha = load_still(path)
    return rgb, sha


def load_still(path: Path) -> tuple[np.ndarray, float, str]:
    """(RGB uint8 image, scale from file pixels to it, sha256 of the file); FacestreamError naming the problem.

    Images larger than DETECT_MAX_SIDE are shrunk for detection; divide boxes by ``scale`` for file pixels.
    """
    if not path.is_file():
        raise FacestreamError(f"{path}: no such file")
    size = path.stat().st_size
    if size > MAX_PHOTO_BYTES:
        raise FacestreamError(
            f"{path}: file too large ({size / 1e6:.0f} MB > {MAX_PHOTO_BYTES / 1e6:.0f} MB)"
        )
    return decode_still(path.read_bytes(), str(path))


def decode_still(data: bytes, label: str) -> tuple[np.ndarray, float, str]:
    """:func:`load_still` of a photo's bytes (an upload); errors start with ``label``."""
    import cv2

    if len(data) > MAX_PHOTO_BYTES:
        raise FacestreamError(f"{label}: file too large ({len(data) / 1e6:.0f} MB > {MAX_PHOTO_BYTES / 1e6:.0f} MB)")
    declared = declared_size(data)
    if declared and declared[0] * declared[1] > MAX_PHOTO_PIXELS:
        # Checked from the file header, before decoding: a small file can declare a gigantic image.
        raise FacestreamError(f"{label}: image too large ({declared[0]}x{declared[1]} pixels)")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if img is None:
        img = decode_with_pillow(data, MAX_PHOTO_PIXELS, colour=True)
    if img is None:
        raise FacestreamError(f"{label}: not an image facestream can read")
    if img.shape[0] * img.shape[1] > MAX_PHOTO_PIXELS:
        raise FacestreamError(f"{label}: image too large ({img.shape[1]}x{img.shape[0]} pixels)")
    scale = min(1.0, DETECT_MAX_SIDE / max(img.shape[:2]))
    if scale < 1:
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(img[:, :, ::-1]), scale, hashlib.sha256(data).hexdigest()


class PhotoEnroller:
    """Photo -> one enrolable face embedding, or a FacestreamError with the reason."""

    def __init__(self, detector: str = DEFAULT_DETECTOR, store: object | None = None):
        self.analyzers = StillAnalyzers(detector, store)
        self.detector = detector

    def enrol_item(self, path: Path) -> EnrolItem:
        """The embedding of the one face in the photo at ``path``; FacestreamError naming the file if refused."""
        rgb, sha = read_photo(path)
        return self.item_from_rgb(rgb, sha, source=path.name, label=str(path))

    def enrol_bytes(self, data: bytes, filename: str) -> EnrolItem:
        """:meth:`enrol_item` of an uploaded photo's bytes; refusals name ``filename``."""
        rgb, _, sha = decode_still(data, filename)
        return self.item_from_rgb(rgb, sha, source=filename, label=filename)

    def item_from_rgb(self, rgb: np.ndarray, sha256: str, source: str, label: str = "image") -> EnrolItem:
        """The embedding of the one face in an RGB uint8 image; FacestreamError ``label: reason`` if refused."""
        from facestream.engines.faces.quality import is_enrolable

        faces = self.analyzers.analyze(rgb)
        if not faces:
            raise FacestreamError(f"{label}: no face found")
        if len(faces) > 1:
            raise FacestreamError(
                f"{label}: {len(faces)} faces in the photo; use a photo of one person (or crop it)"
            )
        face = faces[0]
        ok, reason = is_enrolable(face.quality)
        if not ok:
            raise FacestreamError(f"{label}: {reason}")
        return EnrolItem(face.embedding, face.quality.score, sha256, source=source)


Photo = Path | tuple[str, bytes]  # a file, or an upload: (file name, its bytes)


def collect_items(enroller: PhotoEnroller, photos: list[Photo]) -> tuple[list[EnrolItem], list[str]]:
    """The enrolable embedding of each photo, and the one-line reason for each photo refused."""
    items, refused = [], []
    for photo in photos:
        try:
            if isinstance(photo, Path):
                items.append(enroller.enrol_item(photo))
            else:
                items.append(enroller.enrol_bytes(photo[1], photo[0]))
        except FacestreamError as exc:
            refused.append(str(exc))
    return items, refused


def store_items(gallery_path: Path | str | None, name: str, items: list[EnrolItem], refused: int) -> tuple[int, int]:
    """Enrol ``items`` for ``name`` (``gallery add`` and the web app's upload): (new embeddings, embeddings of
    ``name`` now). FacestreamError when no photo was usable."""
    from .gallery import Gallery

    if not items:
        raise FacestreamError(f"no usable photo of {name}; nothing enrolled ({refused} refused)")
    with Gallery(gallery_path, create=True) as gallery:
        added = gallery.enrol(name, items)
        total = next(p.embeddings for p in gallery.people() if p.name == name.strip())
    return added, total
