"""One call from an RGB frame to faces: detect -> 5 landmarks -> aligned chip -> quality -> embedding."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facestream.engines.store import ModelStore
from facestream.errors import FacestreamError

from .align import face_chip
from .detector_specs import DetectorSpec, spec_class
from .embedder import FaceEmbedder
from .landmarks import LandmarkPredictor
from .low_light import DARK_CHIP_LUMA, LowLightDetector, enhance_chip, is_dark, mean_luma
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
    """detector: a :class:`~.detector_specs.DetectorSpec` (the pipeline config's ``inference.detector``), or a
    type name (``hog``: dlib HOG, CPU; ``cnn``: dlib MMOD as ONNX) whose ``detector_opts`` go to the detector
    class as they are (its own defaults for the rest). Unless ``low_light`` is false, the detector is wrapped in
    :class:`~.low_light.LowLightDetector` (dark frames enhanced for the detector); landmarks and quality still
    come from the frame itself, and in a dark frame a dark face's chip (``low_light.DARK_CHIP_LUMA``) is
    denoised and brightened for the embedder (``low_light.enhance_chip``; the detector's CLAHE-enhanced chip
    named no more darkened LFW faces).
    ``backend_opts`` (e.g. TensorRT's ``engine_dir``) go to every ONNX model loaded here: the CNN detector and
    the embedder.
    """

    def __init__(
        self,
        detector: str | DetectorSpec = "hog",
        store: ModelStore | None = None,
        backend: str = "auto",
        precision: str | None = None,
        backend_opts: dict | None = None,
        **detector_opts,
    ):
        if isinstance(detector, DetectorSpec):
            low_light = detector_opts.pop("low_light", detector.low_light)
            kind, detector_opts = type(detector), {**detector.options(), **detector_opts}
        elif isinstance(detector, str):
            kind = spec_class(detector)
            low_light = detector_opts.pop("low_light", kind.model_fields["low_light"].default)
        else:
            raise FacestreamError(f"detector must be a type name or a DetectorSpec, got {type(detector).__name__}")
        self.backend_opts = dict(backend_opts or {})
        self.detector = kind.make(store, backend, precision, self.backend_opts, **detector_opts)
        if low_light:
            self.detector = LowLightDetector(self.detector)
        self.store = store
        self.backend = backend
        self.precision = precision
        self.landmarks = LandmarkPredictor()
        self._embedder: FaceEmbedder | None = None

    @property
    def embedder(self) -> FaceEmbedder:
        if self._embedder is None:
            self._embedder = FaceEmbedder(
                store=self.store, backend=self.backend, precision=self.precision, **self.backend_opts
            )
        return self._embedder

    def describe(self, rgb: np.ndarray, detections: list) -> list[Face]:
        """Landmarks, aligned chip and quality for detections made elsewhere (no embedding)."""
        faces = []
        ll = self.detector if isinstance(self.detector, LowLightDetector) else None
        dark_frame = bool(detections) and ll is not None and is_dark(rgb, ll.dark_luma)
        for det in detections:
            lm = self.landmarks.predict(rgb, det.box)
            chip = face_chip(rgb, lm)
            quality = face_quality(rgb, det.box, lm, chip=chip)
            # A dark frame's face is enhanced only when the face itself is dark: a lit face on a black
            # background (letterbox, a night sky) is left as it is.
            dark = dark_frame and mean_luma(chip) < DARK_CHIP_LUMA
            faces.append(Face(det.box, det.score, lm, quality, enhance_chip(chip) if dark else chip, None))
        return faces

    def analyze(self, rgb: np.ndarray, embed: bool = True) -> list[Face]:
        """All faces in an RGB uint8 frame, best detection score first; embeddings in one batch."""
        faces = self.describe(rgb, self.detector.detect(rgb))
        if embed and faces:
            vectors = self.embedder.embed(np.stack([f.chip for f in faces]))
            for face, vec in zip(faces, vectors, strict=True):
                face.embedding = vec
        return faces
