"""dlib's ResNet face embedder (ONNX): 150x150 aligned RGB chips -> 128-d descriptors (not normalised).

Two faces are the same person when the euclidean distance of their descriptors is below 0.6 (dlib's
threshold; 99.38% on LFW).
"""

from __future__ import annotations

import numpy as np

from facestream.engines.store import ModelStore
from facestream.errors import FacestreamError

from .models import ensure_dlib_models, load_onnx_model
from .vectors import CHIP_SIZE, EMBEDDING_SIZE


class FaceEmbedder:
    def __init__(
        self,
        store: ModelStore | None = None,
        backend: str = "auto",
        precision: str | None = None,
        **backend_opts,
    ):
        from facestream.engines.dlib_import import EMBEDDER_NAME

        self.store = ensure_dlib_models(store)
        self.model = load_onnx_model(EMBEDDER_NAME, self.store, backend, precision, **backend_opts)
        self.backend_name = self.model.backend_name
        self.distance_threshold = float(self.model.manifest.extra.get("distance_threshold", 0.6))

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """(N, 150, 150, 3) uint8 RGB chips (``align.face_chip``) -> (N, 128) float32 descriptors."""
        chips = np.asarray(chips)
        if chips.ndim == 3:
            chips = chips[None]
        if chips.ndim != 4 or chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3) or chips.dtype != np.uint8:
            raise FacestreamError(
                f"embedder input must be uint8 (N,{CHIP_SIZE},{CHIP_SIZE},3) RGB chips, got {chips.shape} {chips.dtype}"
            )
        if len(chips) == 0:
            return np.zeros((0, EMBEDDING_SIZE), np.float32)
        batch = np.ascontiguousarray(chips.transpose(0, 3, 1, 2), dtype=np.float32)
        return self.model.infer(batch)["descriptor"].astype(np.float32, copy=False)
