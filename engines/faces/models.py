"""Loading the dlib-derived ONNX models, importing them into the store on first use."""

from __future__ import annotations

import logging

from facestream.engines.store import ModelStore

log = logging.getLogger(__name__)


def ensure_dlib_models(store: ModelStore | None = None) -> ModelStore:
    """Import dlib's detector and embedder into ``store`` if either is missing (logs one line when it does)."""
    from facestream.engines.dlib_import import DETECTOR_NAME, EMBEDDER_NAME, import_dlib_models

    store = store or ModelStore()
    if not (store.has(EMBEDDER_NAME) and store.has(DETECTOR_NAME)):
        log.info(
            "dlib models not in %s yet: converting them from face_recognition_models (one-off)", store.root
        )
        import_dlib_models(store)
    return store


def load_onnx_model(
    name: str, store: ModelStore, backend: str = "auto", precision: str | None = None, **opts
):
    """``facestream.engines.runtime.load_model``; the object returned has ``.infer(array) -> dict`` and
    ``.manifest``."""
    from facestream.engines.runtime import load_model

    return load_model(name, backend=backend, precision=precision, store=store, **opts)
