"""One call from an RGB frame to faces: detect -> 5 landmarks -> aligned chip -> quality -> embedding."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facestream.engines.store import ModelStore
from facestream.errors import FacestreamError

from .align import face_chip
from .detector import FaceDetector, HogDetector
from .embedder import FaceEmbedder
from .landmarks import LandmarkPredictor
from .models import ensure_dlib_models
from .quality import FaceQuality, face_quality

__all__ = ["Face", "FaceAnalyzer", "ensure_dlib_models"]


@dataclass
class Face:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 pixels
    score: float
    landmarks: np.ndarray  # (5, 2) float32
    quality: FaceQuality
    chip: np.ndarray  # (150, 150, 3) uint8 RGB, dlib-aligned
    embedding: np.ndarray | None  # (128,) float32, or None when analyze(embed=False)


class FaceAnalyzer:
    """detector: ``hog`` (dlib HOG, CPU) or ``cnn`` (dlib MMOD as ONNX). ``detector_opts`` go to the detector."""

    def __init__(
        self,
        detector: str = "hog",
        store: ModelStore | None = None,
        backend: str = "auto",
        precision: str | None = None,
        **detector_opts,
    ):
        if detector == "hog":
            self.detector = HogDetector(**detector_opts)
        elif detector == "cnn":
            self.detector = FaceDetector(store=store, backend=backend, precision=precision, **detector_opts)
        else:
            raise FacestreamError(f"unknown face detector {detector!r} (choose hog or cnn)")
        self.store = store
        self.backend = backend
        self.precision = precision
        self.landmarks = LandmarkPredictor()
        self._embedder: FaceEmbedder | None = None

    @property
    def embedder(self) -> FaceEmbedder:
        if self._embedder is None:
            self._embedder = FaceEmbedder(store=self.store, backend=self.backend, precision=self.precision)
        return self._embedder

    def describe(self, rgb: np.ndarray, detections: list) -> list[Face]:
        """Landmarks, aligned chip and quality for detections made elsewhere (no embedding)."""
        faces = []
        for det in detections:
            lm = self.landmarks.predict(rgb, det.box)
            chip = face_chip(rgb, lm)
            faces.append(Face(det.box, det.score, lm, face_quality(rgb, det.box, lm, chip=chip), chip, None))
        return faces

    def analyze(self, rgb: np.ndarray, embed: bool = True) -> list[Face]:
        """All faces in an RGB uint8 frame, best detection score first; embeddings in one batch."""
        faces = self.describe(rgb, self.detector.detect(rgb))
        if embed and faces:
            vectors = self.embedder.embed(np.stack([f.chip for f in faces]))
            for face, vec in zip(faces, vectors, strict=True):
                face.embedding = vec
        return faces
