"""Fixtures for the stage tests: dlib's models converted once per session into a throwaway store; the
astronaut photo (scikit-image) as a real face."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facestream.engines.store import ModelStore

# The astronaut photo's face (512 x 512 source pixels), where dlib's HOG detector boxes it.
ASTRONAUT_FACE = (177.0, 80.0, 267.0, 170.0)


@pytest.fixture(scope="session")
def dlib_store(tmp_path_factory) -> ModelStore:
    from facestream.engines.dlib_import import import_dlib_models

    store = ModelStore(tmp_path_factory.mktemp("dlib-models"))
    import_dlib_models(store)
    return store


@pytest.fixture(scope="session")
def astronaut_rgb() -> np.ndarray:
    from skimage.data import astronaut

    return np.ascontiguousarray(astronaut())


@pytest.fixture(scope="session")
def astronaut_bgr(astronaut_rgb) -> np.ndarray:
    return cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2BGR)
