"""Fixtures every test folder may use: dlib's models converted once per session into a throwaway store, and
scikit-image's astronaut photo as a real face (RGB)."""

from __future__ import annotations

import itertools

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


_DB_NUMBERS = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL on loopback for the whole session (tests/support/postgres.py); skips when absent."""
    from tests.support.postgres import PostgresServer, pg_bindir

    bindir = pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (no initdb/postgres; tests/run.sh installs Debian's postgresql)")
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'facestream[postgres]')")
    server = PostgresServer(bindir).start()
    yield server
    server.close()


@pytest.fixture
def postgres_url(postgres_server, request) -> str:
    """The URL of a fresh, empty database on the session's PostgreSQL, one per test."""
    import re

    name = "t_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40] + f"_{next(_DB_NUMBERS)}"
    return postgres_server.url(name)


@pytest.fixture(scope="session")
def mtcnn_wheel(tmp_path_factory):
    """The facenet-pytorch 2.6.0 wheel, fetched by pip once per session (skips when pip cannot reach it)."""
    from facestream.engines.mtcnn_import.importer import download_wheel
    from facestream.errors import FacestreamError

    try:
        return download_wheel(tmp_path_factory.mktemp("mtcnn-wheel"))
    except FacestreamError as exc:
        pytest.skip(f"facenet-pytorch wheel not available: {exc}")


@pytest.fixture(scope="session")
def mtcnn_store(mtcnn_wheel, tmp_path_factory) -> ModelStore:
    """MTCNN's three nets converted once per session into a throwaway store."""
    from facestream.engines.mtcnn_import import import_mtcnn_models

    store = ModelStore(tmp_path_factory.mktemp("mtcnn-models"))
    import_mtcnn_models(store, wheel=mtcnn_wheel)
    return store
