import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from facestream.errors import FacestreamError
from facestream.pipeline.recognition.gallery import EnrolItem, Gallery

REPO = Path(__file__).resolve().parents[3]


def vec(seed: int, dim: int = 128) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=dim).astype(np.float32)


def test_enrol_list_rename_remove_round_trip(gallery):
    assert gallery.enrol("Ada", [EnrolItem(vec(1), 0.9, "sha-a"), EnrolItem(vec(2), 0.8, "sha-b")]) == 2
    assert gallery.enrol("Ada", [EnrolItem(vec(1), 0.9, "sha-a")]) == 0  # same photo twice: skipped
    gallery.enrol("Bob", [EnrolItem(vec(3), 0.7, "sha-c")])
    assert [(p.name, p.embeddings) for p in gallery.people()] == [("Ada", 2), ("Bob", 1)]
    np.testing.assert_array_equal(gallery.embeddings_of("Ada")[1], vec(2))
    gallery.rename("Ada", "Ada L.")
    assert gallery.names() == ["Ada L.", "Bob"]
    with pytest.raises(FacestreamError, match="already exists"):
        gallery.rename("Bob", "Ada L.")
    gallery.remove("Bob")
    assert gallery.names() == ["Ada L."]
    with pytest.raises(FacestreamError, match="no person named"):
        gallery.remove("Bob")


def reload_within(gallery, seconds: float = 2.0):
    """The first snapshot ``reload_if_changed`` gives within ``seconds`` (a NOTIFY takes a moment), or None."""
    deadline = time.monotonic() + seconds
    while True:
        snap = gallery.reload_if_changed()
        if snap is not None or time.monotonic() > deadline:
            return snap
        time.sleep(0.02)


def test_version_and_reload_if_changed_sees_another_connection(gallery, gallery_at):
    first = gallery.reload_if_changed()
    assert first is not None and first.names == []
    assert gallery.reload_if_changed() is None
    other = Gallery(gallery_at)  # e.g. the CLI while the pipeline runs (on PostgreSQL: maybe another host)
    other.enrol("Cy", [EnrolItem(vec(4), 0.9)])
    other.close()
    snap = reload_within(gallery)
    assert snap is not None and snap.names == ["Cy"]
    np.testing.assert_allclose(np.linalg.norm(snap.vectors, axis=1), 1.0, rtol=1e-5)
    assert gallery.reload_if_changed() is None


def test_export_import_round_trip(gallery, tmp_path):
    gallery.enrol("Ada", [EnrolItem(vec(1), 0.9, "a1"), EnrolItem(vec(2), 0.5, "a2")])
    gallery.enrol("Bob", [EnrolItem(vec(3), 0.7, "b1")])
    gallery.reject("evt-1", "Bob")
    out = tmp_path / "export.json"
    assert gallery.export_json(out) == 2
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    assert json.loads(out.read_text())["format"] == "facestream-gallery"
    fresh = Gallery(tmp_path / "fresh.db")
    assert fresh.import_json(out) == (2, 3)
    assert fresh.import_json(out) == (0, 0)  # merging the same file again adds nothing
    np.testing.assert_array_equal(fresh.embeddings_of("Ada"), gallery.embeddings_of("Ada"))
    assert fresh.snapshot().rejection_refs == {"evt-1": {"Bob"}}
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(FacestreamError, match="not a facestream gallery export"):
        fresh.import_json(bad)


def test_forget_deletes_rows_sightings_and_crop_files(gallery, tmp_path):
    crop = tmp_path / "crop-enrol.jpg"
    seen = tmp_path / "crop-seen.jpg"
    crop.write_bytes(b"x")
    seen.write_bytes(b"y")
    gallery.enrol("Ada", [EnrolItem(vec(1), 0.9, "a1", crop_path=str(crop))])
    gallery.enrol("Bob", [EnrolItem(vec(2), 0.9, "b1")])
    gallery.record_sighting("e1", "t1", "cam", 5, vec(1), name="Ada", score=0.95, crop_path=str(seen))
    deleted = gallery.forget("Ada")
    assert sorted(deleted) == sorted([str(crop), str(seen)])
    assert not crop.exists() and not seen.exists()
    assert gallery.names() == ["Bob"]
    counts = [
        gallery.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("embeddings", "sightings")
    ]
    assert counts == [1, 0]


def test_reject_uses_the_sighting_embedding(gallery):
    gallery.enrol("Ada", [EnrolItem(vec(1), 0.9)])
    gallery.record_sighting("evt-9", "trk-9", "cam", 10, vec(7), name="Ada", score=0.93)
    gallery.record_sighting("evt-9", "trk-9", "cam", 10, vec(7), name="Ada", score=0.93)  # replay: ignored
    assert gallery.db.execute("SELECT COUNT(*) FROM sightings").fetchone()[0] == 1
    assert gallery.reject("trk-9", "Ada") is True
    assert gallery.reject("no-such-event", "Ada") is False
    snap = gallery.snapshot()
    assert snap.rejection_refs == {"trk-9": {"Ada"}, "no-such-event": {"Ada"}}
    assert snap.rejection_vectors.shape == (1, 128)


def test_encryption_round_trip_and_key_errors(tmp_path, monkeypatch):
    pytest.importorskip("cryptography")
    path = tmp_path / "enc.db"
    monkeypatch.setenv("FACESTREAM_GALLERY_KEY", "correct horse battery staple")
    g = Gallery(path)
    assert g.encrypted
    g.enrol("Ada", [EnrolItem(vec(1), 0.9)])
    g.close()
    raw = path.read_bytes() + (
        path.with_name("enc.db-wal").read_bytes() if path.with_name("enc.db-wal").exists() else b""
    )
    assert vec(1).tobytes() not in raw  # not stored in the clear
    g = Gallery(path)
    np.testing.assert_array_equal(g.embeddings_of("Ada")[0], vec(1))
    g.close()
    monkeypatch.setenv("FACESTREAM_GALLERY_KEY", "wrong")
    with pytest.raises(FacestreamError, match="wrong FACESTREAM_GALLERY_KEY"):
        Gallery(path)
    monkeypatch.delenv("FACESTREAM_GALLERY_KEY")
    with pytest.raises(FacestreamError, match="is encrypted"):
        Gallery(path)


def test_key_set_on_plain_gallery_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("FACESTREAM_GALLERY_KEY", raising=False)
    g = Gallery(tmp_path / "plain.db")
    g.enrol("Ada", [EnrolItem(vec(1), 0.9)])
    g.close()
    monkeypatch.setenv("FACESTREAM_GALLERY_KEY", "k")
    with pytest.raises(FacestreamError, match="created without encryption"):
        Gallery(tmp_path / "plain.db")


def test_not_a_database_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.delenv("FACESTREAM_GALLERY_KEY", raising=False)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(FacestreamError, match="not a facestream gallery"):
        Gallery(junk)


CHILD = textwrap.dedent(
    """
    import sys, numpy as np
    from facestream.pipeline.recognition.gallery import EnrolItem, Gallery
    g = Gallery(sys.argv[1])
    i = 0
    while True:
        items = [EnrolItem(np.full(128, i * 10 + j, np.float32), 0.9, f"p{i}-{j}") for j in range(5)]
        g.enrol(f"person-{i}", items)
        print(i, flush=True)
        i += 1
    """
)


@pytest.mark.slow
def test_sigkill_mid_enrolment_loses_nothing_committed(tmp_path):
    path = tmp_path / "crash.db"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("FACESTREAM_GALLERY_KEY", None)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True, env=env, cwd=REPO
    )
    committed = []
    try:
        for line in child.stdout:
            committed.append(int(line))
            if len(committed) >= 40:
                break
    finally:
        child.send_signal(signal.SIGKILL)  # mid-way through a later enrolment
        child.wait()
    assert child.returncode == -signal.SIGKILL
    g = Gallery(path)
    people = {p.name: p.embeddings for p in g.people()}
    assert g.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    for i in committed:
        assert people[f"person-{i}"] == 5
        np.testing.assert_array_equal(g.embeddings_of(f"person-{i}")[:, 0], [i * 10 + j for j in range(5)])
    assert all(n == 5 for n in people.values())  # no half-enrolled person


def test_sightings_keep_only_the_newest(gallery):
    for i in range(12):
        gallery.record_sighting(f"e{i}", f"t{i}", "cam", i, vec(i), name=None, unknown_id=1, keep=5)
    ids = [r[0] for r in gallery.db.execute("SELECT event_id FROM sightings ORDER BY ts_ns")]
    assert ids == [f"e{i}" for i in range(7, 12)]
