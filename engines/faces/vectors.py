"""The face embedder's shapes and the unit-vector helper, defined once for engines and pipeline.

dlib's ResNet embedder takes 150x150 RGB chips aligned by ``align.face_chip`` and gives 128-d descriptors;
everything that stores, compares or aggregates embeddings normalises them to unit length first, so cosine
similarity is a dot product.
"""

from __future__ import annotations

import numpy as np

CHIP_SIZE = 150  # side of the aligned face chip the embedder takes, pixels
EMBEDDING_SIZE = 128  # length of one face embedding


def l2_normalise(v: np.ndarray) -> np.ndarray:
    """``v`` (..., D) as float32 unit vectors along the last axis (a zero vector stays zero)."""
    v = np.asarray(v, dtype=np.float32)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-12)
