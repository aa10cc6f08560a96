"""Fixtures every test folder may use: dlib's models converted once per session into a throwaway store, and
scikit-image's astronaut photo as a real face (RGB)."""

from __future__ import annotations

import numpy as np
import pytest

from facestream.engines.store import ModelStore


@pytest.fixture(scope="session")
def dlib_store(tmp_path_factory) -> ModelStore:
    from facestream.engines.dlib_import import import_dlib_models

    store = ModelStore(tmp_path_factory.mktemp("dlib-models"))
    import_dlib_models(store)
    return store


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    from skimage.data import astronaut as load

    return np.ascontiguousarray(load())
