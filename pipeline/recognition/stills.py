"""Identification of still images: every face of one image matched on its own, no tracking across images.

A photo is not a video frame: faces in consecutive photos are different people, and there is no later frame
to wait for. So each face is decided at once, from its own embedding, with the same gallery, threshold and
negative feedback as the stream recognizer (``Matcher``). :func:`decide_faces` is the one home of that
decision; ``facestream identify`` (:class:`StillIdentifier`) and the inference stage's stills path
(``pipeline/stages/still_work.py``, a ``stills`` source such as an image folder) both call it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from facestream.engines.faces.boxes import to_source
from facestream.engines.faces.detector_specs import DEFAULT_DETECTOR, spec_class
from facestream.errors import FacestreamError

from .gallery import GallerySnapshot
from .matcher import DEFAULT_THRESHOLD, Matcher, size_aware_threshold


@dataclass(frozen=True)
class Candidate:
    name: str
    similarity: float


@dataclass(frozen=True)
class StillDecision:
    """Who one face of one image is: a gallery name or None (unknown), with the evidence."""

    name: str | None
    similarity: float | None  # best candidate's cosine similarity (None: empty gallery)
    candidates: list[Candidate] = field(default_factory=list)


@dataclass(frozen=True)
class StillFace:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in the file's pixels
    name: str | None  # None: unknown
    similarity: float | None  # best candidate's cosine similarity (None: empty gallery)
    quality: float
    candidates: list[Candidate] = field(default_factory=list)


def tolerance_to_threshold(tolerance: float) -> float:
    """face_recognition's ``tolerance`` (a distance; smaller is stricter), as a cosine threshold on unit vectors.

    For unit vectors distance d and cosine c satisfy d^2 = 2 - 2c, so c = 1 - d^2 / 2.
    """
    return 1.0 - tolerance * tolerance / 2.0


def named_at_size(similarity: float, size_px: float, threshold: float = DEFAULT_THRESHOLD) -> bool:
    """Whether a face whose box's shorter side is ``size_px`` (pixels of the image it was found in) is named
    at ``similarity``: the size-aware threshold (``matcher.size_aware_threshold``; never below 20 px)."""
    return bool(similarity >= size_aware_threshold(size_px, threshold))


def face_side(box: Sequence[float]) -> float:
    """The shorter side of an (x1, y1, x2, y2) box."""
    return float(min(box[2] - box[0], box[3] - box[1]))


def decide_faces(matcher: Matcher, embeddings: np.ndarray, sides: Sequence[float], top_k: int = 3,
                 refs: list[str | None] | None = None) -> list[StillDecision]:
    """One decision per face of one image: ``embeddings`` (N, 128), ``sides`` the faces' shorter box side in
    pixels of the image they were found in (the size-aware threshold, :func:`named_at_size`), ``refs`` ids for
    negative feedback."""
    if not len(embeddings):
        return []
    results = matcher.match_many(embeddings, refs)
    scores = matcher.person_scores(embeddings) if matcher.size else None
    out = []
    for k, (res, side) in enumerate(zip(results, sides, strict=True)):
        candidates = []
        if scores is not None:
            order = np.argsort(-scores[k])[:top_k]
            candidates = [Candidate(matcher.snapshot.names[i], round(float(scores[k, i]), 4))
                          for i in order if np.isfinite(scores[k, i])]
        sim = round(float(res.score), 4) if np.isfinite(res.score) else None
        named = res.name is not None and named_at_size(res.score, side, matcher.threshold)
        out.append(StillDecision(res.name if named else None, sim, candidates))
    return out


class StillAnalyzers:
    """Face analyzers of one detector type for still photos: one per set of options a photo's size calls for
    (the detector spec's ``still_options``, e.g. HOG searches small photos upsampled), built when first needed."""

    def __init__(self, detector: str = DEFAULT_DETECTOR, store: Any = None):
        try:
            from facestream.engines.faces.analyzer import FaceAnalyzer
        except ImportError as exc:
            raise FacestreamError(f"face analysis is unavailable ({exc})") from exc
        self.detector = detector
        self.spec = spec_class(detector)
        self._make = lambda **kw: FaceAnalyzer(detector=detector, store=store, **kw)
        self._built: dict[tuple[tuple[str, Any], ...], Any] = {}

    def for_image(self, rgb: np.ndarray) -> Any:
        """The analyzer for this image (``analyze(rgb) -> faces``)."""
        return self._with(self.spec.still_options(min(rgb.shape[:2])))

    def analyze(self, rgb: np.ndarray) -> list:
        """The faces of this photo; where none is found, searched again as the spec's retry asks (HOG: a
        thumbnail at 4x)."""
        faces = self.for_image(rgb).analyze(rgb)
        retry = None if faces else self.spec.still_retry_options(min(rgb.shape[:2]))
        return self._with(retry).analyze(rgb) if retry else faces

    def _with(self, options: dict[str, Any]) -> Any:
        key = tuple(sorted(options.items()))
        if key not in self._built:
            self._built[key] = self._make(**options)
        return self._built[key]


class StillIdentifier:
    """Faces of one RGB image -> :class:`StillFace` rows, named against one gallery snapshot."""

    def __init__(self, analyzers: StillAnalyzers, snapshot: GallerySnapshot, threshold: float = DEFAULT_THRESHOLD,
                 top_k: int = 3):
        self.analyzers = analyzers
        self.matcher = Matcher(snapshot, threshold=threshold)
        self.top_k = top_k

    def identify(self, rgb: np.ndarray, scale: float = 1.0) -> list[StillFace]:
        """``scale`` maps file pixels to ``rgb`` pixels (boxes are reported in file pixels)."""
        faces = self.analyzers.analyze(rgb)
        if not faces:
            return []
        boxes = [to_source(face.box, scale) for face in faces]
        decisions = decide_faces(self.matcher, np.stack([f.embedding for f in faces]),
                                 [face_side(f.box) for f in faces], self.top_k)
        return [StillFace(box, d.name, d.similarity, round(float(face.quality.score), 3), d.candidates)
                for box, face, d in zip(boxes, faces, decisions, strict=True)]
