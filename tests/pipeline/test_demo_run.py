"""`facestream run` with no config: the embedded demo finishes by itself and finds the astronaut's face."""

from __future__ import annotations

import json

import pytest

from facestream.pipeline.sources.demo import DemoSource

from .helpers import cli, kill_tree, read_results, read_summary, start

pytestmark = pytest.mark.slow


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def test_embedded_default_run_finds_the_face_in_the_demo_clip(tmp_path):
    out = tmp_path / "out"
    env = {"FACESTREAM__TRANSPORT__RUN_DIR": str(tmp_path / "run"),
           "FACESTREAM__METRICS__PORTS": "{capture: 0, preprocess: 0, inference: 0, sink: 0}",
           "FACESTREAM_MODELS": str(tmp_path / "models"), "FACESTREAM_GALLERY": str(tmp_path / "gallery.db")}
    proc = start(cli("run", "--out", str(out)), tmp_path / "log.txt", env=env)
    try:
        assert proc.wait(300) == 0, (tmp_path / "log.txt").read_text()[-3000:]
    finally:
        kill_tree(proc)
    results = read_results(out)
    summary = read_summary(out)["streams"]["demo"]
    assert summary["results"] == summary["frames_total"] == len(results) > 100
    hits = 0
    for r in results:
        truth = DemoSource.face_box(r["seq"])
        if any(iou(f["box"], truth) >= 0.5 for f in r["faces"]):
            hits += 1
    assert hits >= 0.9 * len(results), f"face found (IoU >= 0.5) in only {hits}/{len(results)} frames"
    # The demo enrols the astronaut from a different view; she is named, not just boxed.
    named = sum(1 for r in results if any(f.get("identity") == "Eileen Collins" for f in r["faces"]))
    assert named >= 0.8 * len(results), f"named in only {named}/{len(results)} frames"
    events = [json.loads(line) for p in (out / "events").glob("*.jsonl") for line in p.read_text().splitlines()]
    kinds = [e["kind"] for e in events]
    assert "identified" in kinds and "track_ended" in kinds, kinds
    log = (tmp_path / "log.txt").read_text()
    assert "results.jsonl" in log and "metrics" in log
