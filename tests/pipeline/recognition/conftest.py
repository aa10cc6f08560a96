"""Fixtures for the recognition tests."""

from __future__ import annotations

import pytest

from facestream.pipeline.recognition.gallery import Gallery


@pytest.fixture
def gallery(tmp_path, monkeypatch):
    monkeypatch.delenv("FACESTREAM_GALLERY_KEY", raising=False)
    g = Gallery(tmp_path / "g.db")
    yield g
    g.close()
