"""Bad vectors never get into the gallery, and one already there (a hand-edited or damaged file) is not fatal.

Before these checks an import accepted a vector of any length (``b64decode("!!!")`` even gave an empty one) and
every later start crashed in ``snapshot()``.
"""

import base64
import json
import logging
import os
import sqlite3

import numpy as np
import pytest
from prometheus_client import REGISTRY

from facestream.errors import FacestreamError
from facestream.pipeline.recognition.gallery import EnrolItem, Gallery
from facestream.pipeline.recognition.matcher import Matcher
from facestream.pipeline.recognition.unknowns import UnknownClusters, promote


def vec(seed: int, dim: int = 128) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=dim).astype(np.float32)


def b64(v: np.ndarray) -> str:
    return base64.b64encode(np.asarray(v, "<f4").tobytes()).decode()


def export_doc(people: list[dict]) -> dict:
    return {"format": "facestream-gallery", "version": 1, "people": people}


def corrupt_count(table: str) -> float:
    return REGISTRY.get_sample_value("facestream_gallery_corrupt_rows_total", {"table": table}) or 0.0


@pytest.mark.parametrize(
    ("vector", "says"),
    [
        (b64(vec(1, 3)), "person 2 ('Bob'), embedding 2: vector has 12 bytes, not 128 float32"),
        ("!!!", "person 2 ('Bob'), embedding 2: vector is not valid base64"),
        (b64(np.full(128, np.nan)), "person 2 ('Bob'), embedding 2: vector is not all finite numbers"),
        (None, "person 2 ('Bob'), embedding 2: vector is not a base64 string"),
    ],
)
def test_import_refuses_a_bad_vector_naming_the_row_and_writes_nothing(gallery, tmp_path, vector, says):
    doc = export_doc([
        {"name": "Ada", "embeddings": [{"vector": b64(vec(1)), "quality": 0.9}]},
        {"name": "Bob", "embeddings": [{"vector": b64(vec(2)), "quality": 0.9}, {"vector": vector}]},
    ])
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(FacestreamError) as err:
        gallery.import_json(path)
    assert says in str(err.value) and "\n" not in str(err.value)
    assert gallery.names() == []  # checked whole before anything was written
    assert gallery.snapshot().vectors.shape[0] == 0


def test_import_refuses_a_bad_rejection_vector(gallery, tmp_path):
    doc = export_doc([{"name": "Ada", "embeddings": [], "rejections": [{"ref": "t-1", "vector": b64(vec(1, 5))}]}])
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(FacestreamError, match=r"person 1 \('Ada'\), rejection 1: vector has 20 bytes"):
        gallery.import_json(path)


def test_enrol_refuses_anything_but_one_finite_128d_vector(gallery):
    with pytest.raises(FacestreamError, match=r"embedding 2 for 'Ada': not 128 numbers"):
        gallery.enrol("Ada", [EnrolItem(vec(1), 0.9), EnrolItem(vec(2, 64), 0.9)])
    with pytest.raises(FacestreamError, match="not all finite"):
        gallery.enrol("Ada", [EnrolItem(np.full(128, np.inf, np.float32), 0.9)])
    assert gallery.names() == []


def test_a_corrupt_row_in_the_file_is_skipped_counted_and_logged_once(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("FACESTREAM_GALLERY_KEY", raising=False)
    path = tmp_path / "g.db"
    with Gallery(path) as g:
        g.enrol("Ada", [EnrolItem(vec(1), 0.9)])
        g.enrol("Bob", [EnrolItem(vec(2), 0.9)])
        g.reject("t-9", "Bob")
    raw = sqlite3.connect(path)  # what a hand edit or a damaged page leaves behind
    bob = raw.execute("SELECT id FROM people WHERE name='Bob'").fetchone()[0]
    raw.execute("INSERT INTO embeddings(person_id, vector, quality, created_ns) VALUES (?, ?, 0.9, 0)",
                (bob, np.ones(3, "<f4").tobytes()))
    raw.execute("INSERT INTO embeddings(person_id, vector, quality, created_ns) VALUES (?, ?, 0.9, 0)",
                (bob, b""))
    raw.execute("INSERT INTO rejections(ref, person_id, vector, created_ns) VALUES ('t-8', ?, ?, 0)",
                (bob, b"junk"))
    raw.execute("INSERT INTO unknowns(centroid, seen, first_ns, last_ns) VALUES (?, 1, 0, 0)", (b"xy",))
    raw.commit()
    raw.close()
    before = corrupt_count("embeddings"), corrupt_count("rejections"), corrupt_count("unknowns")
    with caplog.at_level(logging.WARNING), Gallery(path) as g:
        snap = g.snapshot()  # crashed here before
        g.snapshot()
        clusters = UnknownClusters(g)
        clusters.reload()
        assert snap.names == ["Ada", "Bob"] and snap.vectors.shape == (2, 128)
        assert snap.rejection_refs == {"t-9": {"Bob"}, "t-8": {"Bob"}}
        assert Matcher(snap, threshold=0.5).match(vec(2)).name == "Bob"
        assert clusters.clusters == {}
        assert g.embeddings_of("Bob").shape == (1, 128)
        assert g.export_json(tmp_path / "out.json") == 2  # export skips them too
    after = corrupt_count("embeddings"), corrupt_count("rejections"), corrupt_count("unknowns")
    assert [a - b for a, b in zip(after, before, strict=True)] == [2, 1, 1]
    warnings = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(warnings) == 4, warnings  # once per row, not once per read


def test_promote_goes_through_enrol_in_one_transaction(gallery):
    clusters = UnknownClusters(gallery)
    uid = clusters.assign(vec(5), 0.8, ts_ns=1).unknown_id
    gallery.record_sighting("e1", "t1", "cam", 1, vec(5), unknown_id=uid)
    with pytest.raises(FacestreamError, match="invalid person name"):
        promote(gallery, uid, "unknown#3")
    assert promote(gallery, uid, "Zoe") == 1
    assert gallery.names() == ["Zoe"] and gallery.unknown_table.summaries() == []
    assert gallery.db.execute("SELECT name, unknown_id FROM sightings").fetchall() == [("Zoe", None)]
    with pytest.raises(FacestreamError, match=f"no unknown#{uid}"):
        promote(gallery, uid, "Zoe")


def test_the_gallery_file_is_created_private(tmp_path, monkeypatch):
    monkeypatch.delenv("FACESTREAM_GALLERY_KEY", raising=False)
    old = os.umask(0o022)
    try:
        path = tmp_path / "new" / "g.db"
        with Gallery(path) as g:
            g.enrol("Ada", [EnrolItem(vec(1), 0.9)])
            wal = path.with_name("g.db-wal")
            assert oct(path.stat().st_mode & 0o777) == "0o600"
            assert not wal.exists() or oct(wal.stat().st_mode & 0o777) == "0o600"
    finally:
        os.umask(old)
