"""A real RTSP camera in the running pipeline: it dies and comes back; the other stream never stops."""

from __future__ import annotations

import time

import pytest

from tests.support.rtsp import rtsp_server, rtsp_server_factory  # noqa: F401

from .helpers import (
    cli,
    make_config,
    metric_sum,
    metrics_url,
    read_results,
    scrape,
    start,
    stop,
    wait_for,
)

pytestmark = pytest.mark.slow


def _count(out, stream: str) -> int:
    return sum(1 for r in read_results(out) if r["stream"] == stream)


def test_rtsp_camera_outage_is_survived_and_counted(tmp_path, rtsp_server):  # noqa: F811
    sources = [
        {"id": "door", "uri": rtsp_server.url, "read_timeout_s": 2.0, "open_timeout_s": 3.0,
         "reconnect_min_s": 0.2, "reconnect_max_s": 1.0, "max_fps": 10},
        {"id": "lobby", "uri": "demo", "loop": True, "policy": "latest", "max_fps": 5},
    ]
    cfg = make_config(tmp_path, sources)
    proc = start(cli("run", str(cfg)), tmp_path / "log.txt")
    out, run_dir = tmp_path / "out", tmp_path / "run"
    try:
        wait_for(lambda: _count(out, "door") >= 10, 90, "frames from the RTSP camera")
        rtsp_server.kill()
        time.sleep(1.0)
        lobby_before = _count(out, "lobby")
        wait_for(lambda: _count(out, "lobby") >= lobby_before + 5, 30, "the other stream to keep flowing")
        assert proc.poll() is None
        door_before = _count(out, "door")
        rtsp_server.restart()
        t0 = time.monotonic()
        wait_for(lambda: _count(out, "door") >= door_before + 5, 45, "the camera's frames to resume")
        resumed_after = time.monotonic() - t0
        url = metrics_url(run_dir, "capture")
        reconnects = metric_sum(scrape(url), "facestream_source_reconnects_total", stream="door")
    finally:
        code = stop(proc)
    assert code == 0
    assert reconnects >= 1, "reconnects must be counted per camera"
    assert resumed_after < 45


def test_a_camera_the_pipeline_cannot_keep_up_with_skips_non_reference_frames(tmp_path, rtsp_server_factory):  # noqa: F811
    from tests.pipeline.sources.test_decode_pace import bframe_clip

    clip = bframe_clip(tmp_path / "street.mp4", seconds=40)  # H.264 with B-frames, as cameras and files send
    camera = rtsp_server_factory(mode="file", file=str(clip))
    # Inference takes 0.3 s a frame: it uses about 3 of the camera's 25 frames a second.
    cfg = make_config(tmp_path, [{"id": "gate", "uri": camera.url, "read_timeout_s": 3.0}],
                      inference={"throttle_ms": 300})
    proc = start(cli("run", str(cfg)), tmp_path / "log.txt")
    out, run_dir = tmp_path / "out", tmp_path / "run"
    try:
        wait_for(lambda: _count(out, "gate") >= 3, 60, "results from the camera")
        url = metrics_url(run_dir, "capture")
        wait_for(lambda: metric_sum(scrape(url), "facestream_source_decode_skipping", stream="gate") == 1, 30,
                 "capture to skip non-reference frames")
        before = _count(out, "gate")
        time.sleep(3.0)
        samples = scrape(url)
        after = _count(out, "gate")
    finally:
        code = stop(proc)
    assert code == 0
    assert metric_sum(samples, "facestream_source_nonref_skipped_total", stream="gate") > 10
    assert metric_sum(samples, "facestream_source_decode_errors_total", stream="gate") == 0
    assert after - before >= 5, "results keep coming at the rate inference works at"
