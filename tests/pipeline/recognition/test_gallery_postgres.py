"""What only a shared PostgreSQL gallery does: live reload across hosts through LISTEN/NOTIFY, global unknown ids,
encryption of the stored vectors, versioned migrations, and riding out an outage. Every test talks to a real
PostgreSQL on loopback (tests/support/postgres.py); each "host" is its own Gallery handle (own connections)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from facestream.errors import FacestreamError
from facestream.pipeline.recognition.gallery import EnrolItem, Gallery
from facestream.pipeline.recognition.gallery_store import default_gallery_location, gallery_location
from facestream.pipeline.recognition.pg_migrations import migrations
from facestream.pipeline.recognition.unknowns import UnknownClusters


def vec(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=128).astype(np.float32)


def seen_within(host: Gallery, check, seconds: float = 2.0) -> float:
    """Seconds until a snapshot from ``host.reload_if_changed`` satisfies ``check``; fails after ``seconds``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        snap = host.reload_if_changed()
        if snap is not None and check(snap):
            return time.monotonic() - t0
        time.sleep(0.01)
    raise AssertionError(f"the change did not reach the other host within {seconds} s")


@pytest.fixture
def hosts(postgres_url, monkeypatch):
    monkeypatch.delenv("FACESTREAM_GALLERY_KEY", raising=False)
    a, b = Gallery(postgres_url), Gallery(postgres_url)
    yield a, b
    a.close()
    b.close()


def test_every_change_reaches_the_other_host_within_2_s(hosts):
    a, b = hosts
    assert b.reload_if_changed() is not None and b.reload_if_changed() is None  # loaded; nothing new
    a.enrol("Ada", [EnrolItem(vec(1), 0.9, "a1")])
    seen_within(b, lambda s: s.names == ["Ada"])
    a.rename("Ada", "Ada L.")
    seen_within(b, lambda s: s.names == ["Ada L."])
    a.reject("trk-1", "Ada L.")  # "not X" feedback
    seen_within(b, lambda s: s.rejection_refs == {"trk-1": {"Ada L."}})
    a.forget("Ada L.")
    seen_within(b, lambda s: s.names == [])
    clusters_b = UnknownClusters(b)
    uid = UnknownClusters(a).assign(vec(5), 0.8, ts_ns=1).unknown_id  # a new stranger on host a
    seen_within(b, lambda s: True)
    clusters_b.reload()  # what the recognizer does with the new snapshot
    assert list(clusters_b.clusters) == [uid]
    assert b.reload_if_changed() is None


def test_a_host_does_not_reload_for_its_own_unknown_clusters(hosts):
    a, _ = hosts
    assert a.reload_if_changed() is not None
    UnknownClusters(a).assign(vec(5), 0.8, ts_ns=1)
    time.sleep(0.2)
    assert a.reload_if_changed() is None  # already in its memory: no re-read of the whole gallery


def test_the_same_stranger_gets_the_same_unknown_id_on_both_hosts(hosts):
    a, b = hosts
    on_a, on_b = UnknownClusters(a), UnknownClusters(b)  # both loaded before either saw the face
    first = on_a.assign(vec(7), 0.8, ts_ns=1)
    again = on_b.assign(vec(7) + 0.01 * vec(8), 0.7, ts_ns=2)  # no waiting for a notification
    assert again.unknown_id == first.unknown_id and again.seen == 2
    other = on_b.assign(vec(9), 0.7, ts_ns=3)
    assert other.unknown_id != first.unknown_id
    assert on_a.assign(vec(9), 0.8, ts_ns=4).unknown_id == other.unknown_id
    assert [uid for uid, *_ in a.unknown_table.summaries()] == sorted({first.unknown_id, other.unknown_id})


def test_vectors_are_encrypted_at_rest(postgres_url, monkeypatch):
    pytest.importorskip("cryptography")
    import psycopg

    monkeypatch.setenv("FACESTREAM_GALLERY_KEY", "correct horse battery staple")
    with Gallery(postgres_url) as g:
        assert g.encrypted
        g.enrol("Ada", [EnrolItem(vec(1), 0.9)])
        g.record_sighting("e1", "t1", "cam", 1, vec(2), name="Ada")
    with psycopg.connect(postgres_url) as raw:
        stored = [bytes(r[0]) for r in raw.execute("SELECT vector FROM embeddings UNION ALL "
                                                   "SELECT vector FROM sightings")]
    assert len(stored) == 2 and vec(1).tobytes() not in stored[0] and vec(2).tobytes() not in stored[1]
    with Gallery(postgres_url) as g:  # another host with the same key
        np.testing.assert_array_equal(g.embeddings_of("Ada")[0], vec(1))
    monkeypatch.setenv("FACESTREAM_GALLERY_KEY", "wrong")
    with pytest.raises(FacestreamError, match="wrong FACESTREAM_GALLERY_KEY"):
        Gallery(postgres_url)
    monkeypatch.delenv("FACESTREAM_GALLERY_KEY")
    with pytest.raises(FacestreamError, match="is encrypted"):
        Gallery(postgres_url)


def test_migrations_are_applied_once_and_a_newer_schema_is_refused(postgres_url, monkeypatch):
    import psycopg

    monkeypatch.delenv("FACESTREAM_GALLERY_KEY", raising=False)
    with pytest.raises(FacestreamError, match="no gallery in postgresql://"):
        Gallery(postgres_url, create=False)  # a read-only command creates nothing
    latest = migrations()[-1][0]
    Gallery(postgres_url).close()
    Gallery(postgres_url).close()
    with psycopg.connect(postgres_url, autocommit=True) as raw:
        assert raw.execute("SELECT version FROM schema_version ORDER BY version").fetchall() == [
            (v,) for v in range(1, latest + 1)]
        raw.execute("INSERT INTO schema_version VALUES (%s, '9999_future.sql', 0)", (latest + 1,))
    with pytest.raises(FacestreamError) as err:
        Gallery(postgres_url)
    message = str(err.value)
    assert f"schema version {latest + 1}, newer than this facestream knows ({latest})" in message
    assert "\n" not in message and "upgrade facestream" in message


def test_migration_files_must_be_numbered_without_gaps(tmp_path):
    (tmp_path / "0001_a.sql").write_text("SELECT 1")
    (tmp_path / "0003_c.sql").write_text("SELECT 1")
    with pytest.raises(FacestreamError, match="not numbered"):
        migrations(tmp_path)
    assert [v for v, *_ in migrations()] == list(range(1, len(migrations()) + 1))


def test_a_failed_migration_leaves_nothing_behind(postgres_url, tmp_path, monkeypatch):
    import psycopg

    from facestream.pipeline.recognition.pg_migrations import migrate

    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE first_table (x INTEGER)")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE second_table (x INTEGER); SELECT no_such_column FROM x")
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        with pytest.raises(psycopg.Error):
            migrate(conn, "test", folder=tmp_path)
        assert conn.execute("SELECT to_regclass('first_table'), to_regclass('schema_version')").fetchone() == (
            None, None)


def test_gallery_locations_keep_urls(monkeypatch):
    url = "postgresql://fs@db.example:5432/gallery"
    assert gallery_location(url) == url
    assert gallery_location(Path(url)) == url  # a URL squeezed through Path() on its way (config defaults)
    assert gallery_location("~/g.db") == Path("~/g.db").expanduser()
    monkeypatch.setenv("FACESTREAM_GALLERY", url)
    assert default_gallery_location() == url


def test_an_outage_keeps_the_loaded_gallery_and_writes_fail_in_one_line(tmp_path, monkeypatch):
    from tests.support.postgres import PostgresServer, pg_bindir

    if pg_bindir() is None:
        pytest.skip("PostgreSQL is not installed (tests/run.sh installs Debian's postgresql)")
    monkeypatch.delenv("FACESTREAM_GALLERY_KEY", raising=False)
    server = PostgresServer(pg_bindir()).start()  # its own server: this test stops it
    try:
        url = server.url()
        inference, operator = Gallery(url), Gallery(url)
        operator.enrol("Ada", [EnrolItem(vec(1), 0.9)])
        assert inference.reload_if_changed().names == ["Ada"]
        clusters = UnknownClusters(inference)
        stranger = clusters.assign(vec(5), 0.8, ts_ns=1).unknown_id
        server.stop()
        assert inference.reload_if_changed() is None  # keeps matching against what it has
        assert clusters.assign(vec(5), 0.8, ts_ns=2).unknown_id == stranger  # a cluster it holds: same id
        assert clusters.assign(vec(6), 0.8, ts_ns=3) is None  # a new stranger: plain "unknown" for now
        inference.record_sighting("e1", "t1", "cam", 1, vec(1), name="Ada")  # lost, logged, no crash
        with pytest.raises(FacestreamError) as err:
            operator.enrol("Bob", [EnrolItem(vec(2), 0.9)])
        assert "gallery database postgresql://" in str(err.value) and "\n" not in str(err.value)
        server.restart()
        deadline = time.monotonic() + 10
        while True:  # reconnects are tried at most every 2 s
            try:
                operator.enrol("Bob", [EnrolItem(vec(2), 0.9)])
                break
            except FacestreamError:
                assert time.monotonic() < deadline, "enrolment did not work again after PostgreSQL came back"
                time.sleep(0.2)
        seen_within(inference, lambda s: s.names == ["Ada", "Bob"], seconds=10)
        inference.close()
        operator.close()
    finally:
        server.close()
