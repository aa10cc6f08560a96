"""Fixtures for the recognition tests: every test of the ``gallery`` fixture runs on both stores, the SQLite
file and a real PostgreSQL database (tests/support/postgres.py; skipped with the reason when not installed)."""

from __future__ import annotations

import pytest

from facestream.pipeline.recognition.gallery import Gallery


@pytest.fixture(params=["sqlite", "postgres"])
def gallery_at(request, tmp_path, monkeypatch) -> str:
    """Where the test's gallery lives: a file, or the URL of a fresh PostgreSQL database."""
    monkeypatch.delenv("FACESTREAM_GALLERY_KEY", raising=False)
    if request.param == "sqlite":
        return str(tmp_path / "g.db")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def gallery(gallery_at):
    g = Gallery(gallery_at)
    yield g
    g.close()
