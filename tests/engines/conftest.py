"""Fixtures for engine tests: a throwaway model store and engine cache, never the user's; dlib's models
converted once per session; real face images."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from facestream.engines.store import ModelStore


@pytest.fixture
def store(tmp_path, monkeypatch) -> ModelStore:
    monkeypatch.setenv("FACESTREAM_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("FACESTREAM_ENGINES", str(tmp_path / "engines"))
    return ModelStore(tmp_path / "models")


LFW = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "lfw_subset_10x10"


@pytest.fixture(scope="session")
def lfw_images():
    """load(limit, step) -> RGB LFW images from ../shared/data; skips the test when the folder is absent."""

    def load(limit: int | None = None, step: int = 1) -> list[np.ndarray]:
        files = sorted(LFW.glob("*/*.jpg"))
        if not files:
            pytest.skip(f"LFW subset not found at {LFW} (../shared/data is absent)")
        return [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files[::step][:limit]]

    return load
