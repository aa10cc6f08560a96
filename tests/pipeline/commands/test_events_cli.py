"""`facestream events query`: the store named by --config (or --db), filters, CSV and JSON, one-line errors."""

from __future__ import annotations

import csv
import io
import json
import time

import yaml

from facestream.pipeline.cli import main
from facestream.pipeline.events_store import EventsStore

S = 10**9


def _event(n: int, ts_ns: int, camera: str, name: str | None, kind: str = "identified") -> dict:
    return {"event_id": f"e-{n}", "kind": kind, "stream_id": camera, "track_id": n, "track_ref": f"t-{n}",
            "seq": n, "ts_ns": ts_ns, "first_ts_ns": ts_ns, "identity": name or f"unknown#{n}", "name": name,
            "unknown_id": None if name else n, "score": 0.75, "best_shot_path": f"/o/crops/t-{n}.jpg" if name else None}


def _setup(tmp_path) -> tuple[str, int]:
    out = tmp_path / "out"
    now = time.time_ns()
    store = EventsStore(out / "events.db")
    store.add(_event(1, now - 3 * 3600 * S, "door", "Ada"))
    store.add(_event(2, now - 60 * S, "door", "Ada"), frame="frames/e-2.jpg")
    store.add(_event(3, now - 30 * S, "yard", None))
    store.add(_event(4, now - 10 * S, "yard", "Ada", kind="track_ended"))
    store.close()
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"sink": {"out_dir": str(out)}}))
    return str(config), now


def test_json_filters_on_the_store_the_config_names(tmp_path, capsys):
    config, _ = _setup(tmp_path)

    def ids(*args: str) -> list[str]:
        assert main(["events", "query", "--config", config, "--format", "json", *args]) == 0
        return [e["event_id"] for e in json.loads(capsys.readouterr().out)]

    assert ids() == ["e-4", "e-3", "e-2", "e-1"]
    assert ids("--person", "Ada", "--since", "1h") == ["e-4", "e-2"]
    assert ids("--camera", "yard") == ["e-4", "e-3"]
    assert ids("--unknown", "unknown#3") == ["e-3"]
    assert ids("--kind", "identified", "--until", "45s") == ["e-2", "e-1"]
    assert ids("--limit", "1") == ["e-4"]


def test_csv_has_the_documented_columns_and_iso_utc_times(tmp_path, capsys):
    config, now = _setup(tmp_path)
    assert main(["events", "query", "--config", config, "--person", "Ada", "--kind", "identified"]) == 0
    table = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert table[0] == ["time", "camera", "kind", "identity", "person", "unknown_id", "score", "track_ref",
                        "event_id", "crop", "frame"]
    row = dict(zip(table[0], table[1], strict=True))
    assert row["time"].endswith("Z") and time.strftime("%Y-%m-%dT", time.gmtime((now - 60 * S) / S)) in row["time"]
    assert (row["camera"], row["person"], row["unknown_id"], row["score"]) == ("door", "Ada", "", "0.75")
    assert (row["crop"], row["frame"], row["event_id"]) == ("/o/crops/t-2.jpg", "frames/e-2.jpg", "e-2")


def test_mistakes_are_one_line_errors_with_exit_2(tmp_path, capsys):
    config, _ = _setup(tmp_path)
    for args in (["--since", "last tuesday"], ["--unknown", "bob"], ["--limit", "0"],
                 ["--db", str(tmp_path / "missing.db")]):
        assert main(["events", "query", "--config", config, *args]) == 2, args
        err = capsys.readouterr().err.strip()
        assert err.startswith("facestream: error:") and len(err.splitlines()) == 1, err
