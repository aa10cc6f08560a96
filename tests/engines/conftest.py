"""Fixtures for engine tests: a throwaway model store and engine cache, never the user's."""

from __future__ import annotations

import pytest

from engines.store import ModelStore


@pytest.fixture
def store(tmp_path, monkeypatch) -> ModelStore:
    monkeypatch.setenv("FACESTREAM_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("FACESTREAM_ENGINES", str(tmp_path / "engines"))
    return ModelStore(tmp_path / "models")
