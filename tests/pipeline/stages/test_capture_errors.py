"""A source that fails in the capture stage is logged, and its error travels on, without the camera's
credentials (#13: capture.py logged the raw URI)."""

from __future__ import annotations

import logging

from facestream.pipeline.config import PipelineConfig
from facestream.pipeline.stages import capture
from facestream.pipeline.stages.capture import CaptureStage

URI = "rtsp://admin:hunter2secret@10.0.0.7:554/stream1?token=abcdef123"


def test_a_failing_source_is_logged_and_reported_without_its_credentials(tmp_path, monkeypatch, caplog):
    def fail(cfg):
        raise RuntimeError(f"could not open {cfg.uri} as admin:hunter2secret")  # what a library might say

    monkeypatch.setattr(capture, "open_source", fail)
    cfg = PipelineConfig(sources=[{"id": "door", "uri": URI}], transport={"run_dir": str(tmp_path / "run")},
                         sink={"out_dir": str(tmp_path / "out")})
    stage = CaptureStage(cfg)
    scfg = cfg.sources[0]
    with caplog.at_level(logging.ERROR):
        stage.reader(scfg)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "door" in text and "failed" in text and "rtsp://***@10.0.0.7:554/stream1" in text
    error = stage.buffers["door"].error
    for shown in (text, error):
        assert "hunter2secret" not in shown and "abcdef123" not in shown, shown
