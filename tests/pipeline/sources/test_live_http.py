"""Live HTTP (MJPEG) source against a real HTTP camera on loopback: frames flow, the newest frames win
when the consumer is slow (drops counted, latency bounded), a camera that goes away is reconnected to."""

from __future__ import annotations

import threading
import time

import numpy as np
from helpers import metric, numbered_frame, unique_id

from facestream.pipeline.sources import SourceConfig, open_source
from tests.support.mjpeg_http import MjpegCamera


def _config(url: str, prefix: str, **overrides) -> SourceConfig:
    settings = dict(id=unique_id(prefix), uri=url, open_timeout_s=3.0, read_timeout_s=1.0,
                    reconnect_min_s=0.1, reconnect_max_s=0.4)
    settings.update(overrides)
    return SourceConfig(**settings)


def test_frames_flow_and_resize():
    camera = MjpegCamera(numbered_frame)
    try:
        cfg = _config(camera.url, "http", resize={"width": 80, "height": 64}, max_frames=15)
        source = open_source(cfg)
        assert source.live and cfg.policy == "latest"
        frames = list(source.frames())  # max_frames ends a live source
    finally:
        camera.stop()
    assert len(frames) == 15
    assert {f.image.shape for f in frames} == {(64, 80, 3)}
    assert metric("facestream_source_frames_total", cfg.id) == 15


def test_slow_consumer_gets_recent_frames_and_drops_are_counted():
    camera = MjpegCamera(numbered_frame, fps=50)
    try:
        cfg = _config(camera.url, "http-slow", queue_size=2)
        source = open_source(cfg)
        ages_s = []
        for frame in source.frames():
            ages_s.append((time.monotonic_ns() - frame.mono_ns) / 1e9)
            time.sleep(0.1)  # a consumer 5x slower than the camera
            if len(ages_s) == 15:
                break
    finally:
        camera.stop()
    assert metric("facestream_source_dropped_frames_total", cfg.id) > 20
    # Latest-frame policy: a frame is at most queue_size consumer periods old, however long the run.
    assert max(ages_s[5:]) < 0.5, ages_s


def test_camera_gone_and_back_is_reconnected():
    camera = MjpegCamera(numbered_frame)
    port = camera.port
    cfg = _config(camera.url, "http-restart")
    source = open_source(cfg)
    frames = []
    consumer = threading.Thread(target=lambda: frames.extend(source.frames()), daemon=True)
    consumer.start()
    try:
        deadline = time.monotonic() + 10
        while len(frames) < 10 and time.monotonic() < deadline:
            time.sleep(0.02)
        camera.stop()
        time.sleep(1.5)
        assert metric("facestream_source_up", cfg.id) == 0
        before = len(frames)
        camera = MjpegCamera(lambda i: np.zeros((90, 160, 3), np.uint8), port=port)
        deadline = time.monotonic() + 10
        while len(frames) < before + 10 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(frames) >= before + 10, "frames did not resume"
        assert metric("facestream_source_up", cfg.id) == 1
    finally:
        source.close()
        camera.stop()
    consumer.join(2)
    assert not consumer.is_alive()
    assert metric("facestream_source_reconnects_total", cfg.id) >= 1
    assert metric("facestream_source_resolution_changes_total", cfg.id) == 1
    indices = [f.index for f in frames]
    assert indices == sorted(set(indices))


def test_missing_webcam_is_retried_until_close():
    cfg = SourceConfig(id=unique_id("webcam"), uri="webcam:63", reconnect_min_s=0.05, reconnect_max_s=0.1)
    source = open_source(cfg)
    frames = []
    consumer = threading.Thread(target=lambda: frames.extend(source.frames()), daemon=True)
    consumer.start()
    time.sleep(1.0)
    assert source.attempts >= 3 and frames == []
    assert metric("facestream_source_reconnects_total", cfg.id) == source.attempts - 1
    start = time.monotonic()
    source.close()
    consumer.join(2)
    assert not consumer.is_alive() and time.monotonic() - start < 1.5


def test_passwords_are_masked_in_logs(caplog):
    port_nobody_listens_on = MjpegCamera(numbered_frame)
    url = port_nobody_listens_on.url.replace("http://", "http://admin:hunter2@")
    port_nobody_listens_on.stop()
    source = open_source(_config(url, "http-pw"))
    consumer = threading.Thread(target=lambda: list(source.frames()), daemon=True)
    consumer.start()
    time.sleep(0.5)
    source.close()
    consumer.join(2)
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "reconnecting" in messages and "***@127.0.0.1" in messages
    assert "hunter2" not in messages
