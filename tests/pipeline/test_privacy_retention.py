"""Retention covers everything stored about people (#13): crops, event files, videos, the lines of
results.jsonl, and the gallery's sightings and unknown clusters; `gallery forget NAME` also redacts the name
from the results and event files of the configured out_dir."""

from __future__ import annotations

import json
import logging
import os
import time

import numpy as np
import yaml

from facestream.pipeline.cli import main
from facestream.pipeline.recognition.gallery import EnrolItem, Gallery
from facestream.pipeline.recognition.gallery_retention import GalleryRetention, prune_gallery
from facestream.pipeline.stages.retention import RetentionSweeper
from facestream.pipeline.stages.sink import SafeWriter

DAY_NS = 86400 * 10**9
LOG = logging.getLogger("test")


def _vec(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=128).astype(np.float32)
    return v / np.linalg.norm(v)


def _result(ts_ns: int, identity: str | None) -> str:
    face = {"box": [1, 1, 9, 9], "score": 1.0, **({"identity": identity, "similarity": 0.9} if identity else {})}
    return json.dumps({"stream": "cam", "seq": ts_ns % 1000, "capture_wall_ns": ts_ns, "faces": [face]})


def test_retention_drops_old_result_lines_and_videos_and_the_sink_writes_on(tmp_path):
    now = time.time_ns()
    results = tmp_path / "results.jsonl"
    writer = SafeWriter(results, "result", LOG)  # the sink's writer, open across the sweep
    for ts in (now - 9 * DAY_NS, now - 8 * DAY_NS, now - DAY_NS, now):
        assert writer.write(_result(ts, None))
    old_video, new_video = tmp_path / "cam.mp4", tmp_path / "door.mp4"
    for p in (old_video, new_video):
        p.write_bytes(b"mp4")
    ten_days = time.time() - 10 * 86400
    os.utime(old_video, (ten_days, ten_days))

    assert RetentionSweeper(tmp_path, 7, LOG).sweep() == 3  # two result lines and one video
    kept = [json.loads(x)["capture_wall_ns"] for x in results.read_text().splitlines()]
    assert kept == [now - DAY_NS, now]
    assert not old_video.exists() and new_video.exists()
    assert writer.write(_result(now + 1, None)), "the sink appends to the rewritten file"
    assert [json.loads(x)["capture_wall_ns"] for x in results.read_text().splitlines()][-1] == now + 1
    writer.close()
    assert RetentionSweeper(tmp_path, 7, LOG).sweep() == 0, "nothing old left: the file is not rewritten"


def test_retention_prunes_old_sightings_and_unknown_clusters(tmp_path):
    now = time.time_ns()
    with Gallery(tmp_path / "g.db") as g:
        old_cluster = g.unknown_table.create(_vec(1), now - 30 * DAY_NS)
        g.unknown_table.set_members(old_cluster, [(0.9, _vec(1))])
        new_cluster = g.unknown_table.create(_vec(2), now - DAY_NS)
        g.record_sighting("e-old", "t-old", "cam", now - 30 * DAY_NS, _vec(1), unknown_id=old_cluster)
        g.record_sighting("e-new", "t-new", "cam", now - DAY_NS, _vec(2), unknown_id=new_cluster)
        version = g.version()
        assert GalleryRetention(g, 0).maybe_prune() == (0, 0), "0 days = keep everything"
        assert prune_gallery(g, now - 7 * DAY_NS) == (1, 1)
        assert [c.unknown_id for c in g.unknown_table.load()] == [new_cluster]
        assert g.db.execute("SELECT COUNT(*) FROM unknown_members").fetchone()[0] == 0, "the members went too"
        assert [r[0] for r in g.db.execute("SELECT event_id FROM sightings")] == ["e-new"]
        assert g.version() > version, "a running recognizer must reload its clusters"


def test_forget_redacts_the_name_from_results_and_events(tmp_path, capsys):
    out = tmp_path / "out"
    (out / "events").mkdir(parents=True)
    now = time.time_ns()
    (out / "results.jsonl").write_text("\n".join([_result(now, "Ada Lovelace"), _result(now + 1, "Alan Turing"),
                                                 _result(now + 2, None)]) + "\n")
    event = {"event_id": "e-1", "kind": "identified", "identity": "Ada Lovelace", "name": "Ada Lovelace",
             "best_shot_path": str(out / "crops" / "x.jpg"), "score": 0.8}
    other = {"event_id": "e-2", "kind": "identified", "identity": "Alan Turing"}
    (out / "events" / "2026-01-01.jsonl").write_text(json.dumps(event) + "\n" + json.dumps(other) + "\n")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"inference": {"gallery": str(tmp_path / "g.db")},
                                      "sink": {"out_dir": str(out)}}))
    with Gallery(tmp_path / "g.db") as g:
        g.enrol("Ada Lovelace", [EnrolItem(_vec(3), 0.9, source="photo")])
    assert main(["gallery", "forget", "Ada Lovelace", "--config", str(config)]) == 0
    printed = capsys.readouterr().out
    assert "redacted Ada Lovelace from 2 line(s) in 2 file(s)" in printed
    for path in (out / "results.jsonl", out / "events" / "2026-01-01.jsonl"):
        text = path.read_text()
        assert "Ada Lovelace" not in text and "Alan Turing" in text, path
    redacted = json.loads((out / "events" / "2026-01-01.jsonl").read_text().splitlines()[0])
    assert redacted["identity"] is None and redacted["name"] is None and "best_shot_path" not in redacted


def _dead_letter(ts_ns: int, identity: str | None) -> str:
    """A line as pipeline/integrations/dead_letter.py writes it: the event an integration gave up on."""
    event = {"event_id": f"e-{ts_ns}", "kind": "identified", "stream_id": "cam", "ts_ns": ts_ns,
             "identity": identity, "name": identity, "score": 0.8, "best_shot_path": "crops/cam/t-1.jpg"}
    return json.dumps({"time": "2026-01-01T00:00:00Z", "integration": "webhook-0", "url": "http://hook",
                       "reason": "retries_exhausted", "attempts": 5, "error": "HTTP 500", "event": event})


def test_retention_and_forget_cover_the_integrations_dead_letter_files(tmp_path, capsys):
    now = time.time_ns()
    dead = tmp_path / "out" / "dead_letter"
    dead.mkdir(parents=True)
    path = dead / "webhook-0.jsonl"
    path.write_text("\n".join([_dead_letter(now - 9 * DAY_NS, "Alan Turing"), _dead_letter(now, "Ada Lovelace"),
                               _dead_letter(now + 1, "Alan Turing")]) + "\n")
    assert RetentionSweeper(tmp_path / "out", 7, LOG).sweep() == 1
    assert [json.loads(x)["event"]["ts_ns"] for x in path.read_text().splitlines()] == [now, now + 1]

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"inference": {"gallery": str(tmp_path / "g.db")},
                                      "sink": {"out_dir": str(tmp_path / "out")}}))
    with Gallery(tmp_path / "g.db") as g:
        g.enrol("Ada Lovelace", [EnrolItem(_vec(4), 0.9, source="photo")])
    assert main(["gallery", "forget", "Ada Lovelace", "--config", str(config)]) == 0
    assert "redacted Ada Lovelace from 1 line(s) in 1 file(s)" in capsys.readouterr().out
    text = path.read_text()
    assert "Ada Lovelace" not in text and "Alan Turing" in text
    event = json.loads(text.splitlines()[0])["event"]
    assert event["identity"] is None and "best_shot_path" not in event and "score" not in event
