"""What /api/status reads from outside the stages: the run directory of a live run, pid files, /metrics."""

from __future__ import annotations

import os

from facestream.pipeline.config import PipelineConfig
from facestream.pipeline.run_dir import StageLock, secure_dir
from facestream.pipeline.web.status import find_run_dir, stages_status


def test_standalone_web_finds_the_live_runs_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    base = secure_dir(tmp_path / "facestream")
    cfg = PipelineConfig()
    assert find_run_dir(cfg) == base  # no run: the base
    finished = secure_dir(base / "run-111")
    (finished / "run.lock").write_text("111\n")  # left behind, nobody holds it
    live = secure_dir(base / "run-222")
    lock = StageLock(live, "run")
    try:
        assert find_run_dir(cfg) == live
        assert find_run_dir(PipelineConfig.model_validate({"transport": {"run_dir": str(finished)}})) == finished
    finally:
        lock.release()
    assert find_run_dir(cfg) == base


def test_stage_rows_from_pid_files_and_metrics_urls(tmp_path):
    run_dir = secure_dir(tmp_path / "run")
    (run_dir / "sink.pid").write_text(f"{os.getpid()}\n")  # a live process
    (run_dir / "capture.pid").write_text("999999999\n")  # no such process
    (run_dir / "metrics-sink.url").write_text("http://127.0.0.1:9/metrics\n")  # nothing listens on port 9
    cfg = PipelineConfig.model_validate({"metrics": {"ports": {"capture": 0, "preprocess": 0, "inference": 0,
                                                               "sink": 0}}})
    rows = {r["stage"]: r for r in stages_status(cfg, run_dir)}
    assert rows["sink"]["pid"] == os.getpid() and rows["sink"]["running"]
    assert rows["sink"]["metrics_url"] == "http://127.0.0.1:9/metrics" and rows["sink"]["reachable"] is False
    assert rows["capture"]["pid"] is None and not rows["capture"]["running"] and rows["capture"]["metrics_url"] is None
