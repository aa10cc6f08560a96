"""The events store (pipeline/events_store.py): what the sink writes and the web app and CLI read."""

from __future__ import annotations

import sqlite3

import pytest

from facestream.errors import FacestreamError
from facestream.pipeline.events_store import SCHEMA_VERSION, EventQuery, EventsStore, parse_since

S = 10**9


def event(n: int, ts_ns: int, kind: str = "identified", camera: str = "door", name: str | None = "Ada",
          unknown_id: int | None = None, **extra) -> dict:
    identity = name if name else (f"unknown#{unknown_id}" if unknown_id is not None else None)
    return {"event_id": f"t{n}:{kind}:{n}", "kind": kind, "stream_id": camera, "track_id": n, "track_ref": f"t{n}",
            "seq": n, "ts_ns": ts_ns, "first_ts_ns": ts_ns - S, "identity": identity, "name": name,
            "unknown_id": unknown_id, "score": 0.8, "confidence": None, "best_shot_path": f"/out/crops/t{n}.jpg",
            "previous_identity": None, "dwell_seconds": None, **extra}


@pytest.fixture
def store(tmp_path):
    s = EventsStore(tmp_path / "events.db")
    yield s
    s.close()


def test_add_once_per_event_id_and_the_row_reads_back_whole(store):
    e = event(1, 100 * S)
    assert store.add(e, frame="frames/t1.jpg") is True
    assert store.add({**e, "score": 0.1}) is False, "a replayed event is stored once"
    assert store.count() == 1
    got = store.get(e["event_id"])
    assert got is not None
    assert {k: got[k] for k in e} == e
    assert (got["camera"], got["person"], got["frame"]) == ("door", "Ada", "frames/t1.jpg")
    assert store.get("nope") is None
    assert store.add_many([e, event(2, 101 * S), event(3, 102 * S)]) == 2
    assert store.count() == 3


def test_query_filters_combine_and_rows_come_newest_first(store):
    store.add_many([
        event(1, 100 * S, camera="door"),
        event(2, 200 * S, camera="yard"),
        event(3, 300 * S, camera="door", name=None, unknown_id=7),
        event(4, 400 * S, camera="door", kind="track_ended"),
        event(5, 500 * S, camera="door", name="Bob"),
    ])
    ids = lambda q: [r["track_id"] for r in store.query(q)]  # noqa: E731
    assert ids(EventQuery()) == [5, 4, 3, 2, 1]
    assert ids(EventQuery(person="Ada")) == [4, 2, 1]
    assert ids(EventQuery(person="Ada", camera="door")) == [4, 1]
    assert ids(EventQuery(unknown_id=7)) == [3]
    assert ids(EventQuery(kind="track_ended")) == [4]
    assert ids(EventQuery(camera="nowhere")) == []
    assert store.cameras() == ["door", "yard"]
    unknown = store.query(EventQuery(unknown_id=7))[0]
    assert unknown["person"] is None and unknown["identity"] == "unknown#7"


def test_since_is_inclusive_until_exclusive_and_limit_offset_page(store):
    store.add_many([event(k, k * 100 * S) for k in range(1, 6)])
    ids = lambda q: [r["track_id"] for r in store.query(q)]  # noqa: E731
    assert ids(EventQuery(since_ns=200 * S)) == [5, 4, 3, 2]
    assert ids(EventQuery(until_ns=300 * S)) == [2, 1]
    assert ids(EventQuery(since_ns=200 * S, until_ns=400 * S)) == [3, 2]
    assert ids(EventQuery(limit=2)) == [5, 4]
    assert ids(EventQuery(limit=2, offset=2)) == [3, 2]
    assert ids(EventQuery(limit=0)) == []


def test_parse_since_forms_and_a_bad_one_is_a_one_line_error():
    now = 1_800_000_000 * S
    assert parse_since("1h", now) == now - 3600 * S
    assert parse_since("30m", now) == now - 1800 * S
    assert parse_since("2d", now) == now - 2 * 86400 * S
    assert parse_since("1700000000") == 1_700_000_000 * S
    assert parse_since("2023-11-14T22:13:20Z") == 1_700_000_000 * S
    assert parse_since("2023-11-14T22:13:20") == 1_700_000_000 * S, "no zone = UTC"
    with pytest.raises(FacestreamError) as err:
        parse_since("yesterday-ish")
    assert "\n" not in str(err.value)


def test_delete_before_removes_only_older_events(store):
    store.add_many([event(k, k * 100 * S) for k in range(1, 6)])
    assert store.delete_before(300 * S) == 2
    assert sorted(r["track_id"] for r in store.query()) == [3, 4, 5]
    assert store.delete_before(300 * S) == 0


def test_forget_person_removes_their_rows_by_name_or_identity(store):
    store.add(event(1, 100 * S), frame="frames/a.jpg")
    store.add(event(2, 200 * S, name="Bob"))
    store.add(event(3, 300 * S, kind="track_started", name=None, identity="Ada"))  # labelled, not named
    store.add(event(4, 400 * S, name=None, unknown_id=3))
    assert store.frames_of("Ada") == ["frames/a.jpg"]
    assert store.forget_person("Ada") == 2
    assert sorted(r["track_id"] for r in store.query()) == [2, 4]
    assert store.forget_person("Ada") == 0


def test_readonly_needs_an_existing_file_and_cannot_write(tmp_path):
    with pytest.raises(FacestreamError, match="no events store"):
        EventsStore(tmp_path / "missing.db", readonly=True)
    assert not (tmp_path / "missing.db").exists(), "a reader never creates the store"
    writer = EventsStore(tmp_path / "events.db")
    writer.add(event(1, 100 * S))
    reader = EventsStore(tmp_path / "events.db", readonly=True)
    try:
        assert reader.count() == 1
        writer.add(event(2, 200 * S))  # WAL: the writer goes on beside the reader
        assert reader.count() == 2
        with pytest.raises(sqlite3.OperationalError):
            reader.add(event(3, 300 * S))
    finally:
        reader.close()
        writer.close()
    reader = EventsStore(tmp_path / "events.db", readonly=True)  # no writer left: WAL files gone
    assert [r["track_id"] for r in reader.query()] == [2, 1]
    reader.close()


def test_a_store_from_a_newer_facestream_is_refused(tmp_path):
    path = tmp_path / "events.db"
    EventsStore(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    for readonly in (True, False):
        with pytest.raises(FacestreamError, match="newer than this facestream"):
            EventsStore(path, readonly=readonly)
