"""Retention and `gallery forget` reach the events store (#14): old rows and old event frames go; forgetting a
person deletes their rows and the frames of their events, and nobody else's."""

from __future__ import annotations

import logging
import os
import time

import numpy as np
import yaml

from facestream.pipeline.cli import main
from facestream.pipeline.events_store import EventQuery, EventsStore
from facestream.pipeline.recognition.gallery import EnrolItem, Gallery
from facestream.pipeline.stages.retention import RetentionSweeper

DAY_NS = 86400 * 10**9
LOG = logging.getLogger("test")


def _event(n: int, ts_ns: int, name: str | None) -> dict:
    return {"event_id": f"e-{n}", "kind": "identified", "stream_id": "cam", "track_id": n, "track_ref": f"t-{n}",
            "seq": n, "ts_ns": ts_ns, "first_ts_ns": ts_ns, "identity": name or f"unknown#{n}", "name": name,
            "unknown_id": None if name else n, "score": 0.9}


def _frame(out, n: int, age_days: float = 0) -> str:
    rel = f"frames/e-{n}.jpg"
    (out / "frames").mkdir(parents=True, exist_ok=True)
    (out / rel).write_bytes(b"\xff\xd8jpeg")
    if age_days:
        t = time.time() - age_days * 86400
        os.utime(out / rel, (t, t))
    return rel


def test_retention_deletes_old_events_from_the_store_and_old_event_frames(tmp_path):
    now = time.time_ns()
    store = EventsStore(tmp_path / "events.db")  # the sink's connection stays open across the sweep
    store.add(_event(1, now - 9 * DAY_NS, "Ada"), frame=_frame(tmp_path, 1, age_days=9))
    store.add(_event(2, now - 8 * DAY_NS, None))
    store.add(_event(3, now - DAY_NS, "Ada"), frame=_frame(tmp_path, 3, age_days=1))
    assert RetentionSweeper(tmp_path, 7, LOG).sweep() == 3  # two stored events and one frame file
    assert [r["event_id"] for r in store.query(EventQuery())] == ["e-3"]
    assert not (tmp_path / "frames" / "e-1.jpg").exists() and (tmp_path / "frames" / "e-3.jpg").exists()
    assert store.add(_event(4, now, "Bob")), "the sink writes on after the sweep"
    store.close()
    assert RetentionSweeper(tmp_path, 7, LOG).sweep() == 0
    assert RetentionSweeper(tmp_path / "nothing-here", 7, LOG).sweep() == 0, "no store: nothing to do"


def test_forget_deletes_the_persons_events_and_frames_from_the_store(tmp_path, capsys):
    out = tmp_path / "out"
    now = time.time_ns()
    store = EventsStore(out / "events.db")
    store.add(_event(1, now, "Ada Lovelace"), frame=_frame(out, 1))
    store.add(_event(2, now, "Ada Lovelace"))
    store.add(_event(3, now, "Alan Turing"), frame=_frame(out, 3))
    store.close()
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"inference": {"gallery": str(tmp_path / "g.db")}, "sink": {"out_dir": str(out)}}))
    with Gallery(tmp_path / "g.db") as g:
        v = np.random.default_rng(1).normal(size=128).astype(np.float32)
        g.enrol("Ada Lovelace", [EnrolItem(v / np.linalg.norm(v), 0.9, source="photo")])
    assert main(["gallery", "forget", "Ada Lovelace", "--config", str(config)]) == 0
    assert "deleted 2 event(s) and 1 event frame(s) of Ada Lovelace" in capsys.readouterr().out
    store = EventsStore(out / "events.db", readonly=True)
    assert [r["event_id"] for r in store.query(EventQuery())] == ["e-3"]
    store.close()
    assert not (out / "frames" / "e-1.jpg").exists() and (out / "frames" / "e-3.jpg").exists()
