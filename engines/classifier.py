"""Closed-set face recognition with a trained classifier from the model store (no torch).

The classes are the people the model was trained on; a face whose top probability falls below the
manifest's calibrated ``extra["unknown_threshold"]`` is reported as ``"unknown"``.
"""

from __future__ import annotations

import numpy as np

from facestream.errors import FacestreamError

from .runtime import load_model
from .store import ModelStore

UNKNOWN = "unknown"


class FaceClassifier:
    """``predict(crops)`` -> [(label or "unknown", confidence)] for (N, 128, 128) float32 crops from
    ``facestream.engines.preprocess.face_crop_128``."""

    def __init__(
        self,
        model_name: str,
        store: ModelStore | None = None,
        backend: str = "auto",
        precision: str | None = None,
        threshold: float | None = None,
    ):
        self.model = load_model(model_name, backend=backend, precision=precision, store=store)
        manifest = self.model.manifest
        if manifest.task != "classifier" or not manifest.labels:
            raise FacestreamError(
                f"model {model_name!r} is not a face classifier (task {manifest.task!r}, no labels)"
            )
        self.labels = list(manifest.labels)
        stored = manifest.extra.get("unknown_threshold")
        self.threshold = float(
            threshold if threshold is not None else (stored if stored is not None else 0.0)
        )
        self.embedding_output = manifest.extra.get("embedding_output")

    def _run(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        crops = np.asarray(crops)
        if crops.ndim == 2:
            crops = crops[None]
        if crops.ndim != 3:
            raise FacestreamError(f"face crops must have shape (N, 128, 128), got {list(crops.shape)}")
        return self.model.infer(np.ascontiguousarray(crops[:, None], dtype=np.float32))

    def probabilities(self, crops: np.ndarray) -> np.ndarray:
        """Softmax probabilities (N, classes), columns in ``self.labels`` order."""
        return self._run(crops)["probs"]

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """L2-normalised embeddings (N, D); only for embedding models (open-set matching)."""
        if not self.embedding_output:
            raise FacestreamError(f"model {self.model.manifest.name!r} has no embedding output")
        return self._run(crops)[self.embedding_output]

    def decide(self, probs: np.ndarray) -> list[tuple[str, float]]:
        top = probs.argmax(axis=1)
        conf = probs[np.arange(len(top)), top]
        return [
            (self.labels[int(i)] if float(c) >= self.threshold else UNKNOWN, float(c))
            for i, c in zip(top, conf, strict=True)
        ]

    def predict(self, crops: np.ndarray) -> list[tuple[str, float]]:
        """(label, confidence) per crop; label is "unknown" when confidence < the calibrated threshold."""
        if len(crops) == 0:
            return []
        return self.decide(self.probabilities(crops))
