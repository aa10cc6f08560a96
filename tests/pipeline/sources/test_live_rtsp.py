"""Live RTSP source against a real GStreamer RTSP server on loopback: frames flow, a killed server is
reconnected to, stalls are detected by the read timeout, a dead server is retried until close()."""

from __future__ import annotations

import threading
import time

import pytest
from helpers import metric, unique_id

from facestream.pipeline.sources import SourceConfig, open_source
from facestream.pipeline.sources.live import LiveSource
from facestream.pipeline.sources.pyav_capture import pyav_available

pytestmark = pytest.mark.slow


def _config(url: str, prefix: str, **overrides) -> SourceConfig:
    settings = dict(
        id=unique_id(prefix), uri=url, open_timeout_s=3.0, read_timeout_s=1.5,
        ffmpeg_options={"analyzeduration": "500000"},
        reconnect_min_s=0.1, reconnect_max_s=0.5, reconnect_jitter=0.2,
    )
    settings.update(overrides)
    return SourceConfig(**settings)


class Collector:
    """Consumes a source's frames() on a thread, so the test can act on the server meanwhile."""

    def __init__(self, source: LiveSource) -> None:
        self.source = source
        self.frames = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for frame in self.source.frames():
            self.frames.append(frame)

    def wait_for(self, count: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while len(self.frames) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return len(self.frames) >= count

    def stop(self, within_s: float = 2.0) -> float:
        start = time.monotonic()
        self.source.close()
        self.thread.join(within_s)
        assert not self.thread.is_alive(), "frames() did not return after close()"
        return time.monotonic() - start


_NEEDS_PYAV = pytest.mark.skipif(not pyav_available(), reason="PyAV not installed")
DECODERS = ["opencv", pytest.param("pyav", marks=_NEEDS_PYAV)]


@pytest.mark.parametrize(
    ("transport", "decoder"),
    [("tcp", "opencv"), ("udp", "opencv"), pytest.param("tcp", "pyav", marks=_NEEDS_PYAV),
     pytest.param("udp", "pyav", marks=_NEEDS_PYAV)],
)
def test_frames_flow(rtsp_server, transport, decoder):
    cfg = _config(rtsp_server.url, "rtsp", rtsp_transport=transport, decoder=decoder)
    source = open_source(cfg)
    assert isinstance(source, LiveSource) and source.live and source.decoder == decoder
    run = Collector(source)
    assert run.wait_for(20, timeout_s=15), f"only {len(run.frames)} frames over {transport}"
    assert metric("facestream_source_up", cfg.id) == 1
    run.stop()
    indices = [f.index for f in run.frames]
    assert indices == sorted(set(indices))
    assert run.frames[0].image.shape == (240, 320, 3)
    assert metric("facestream_source_up", cfg.id) == 0


def test_server_killed_and_restarted_reconnects(rtsp_server):
    cfg = _config(rtsp_server.url, "rtsp-restart")
    run = Collector(open_source(cfg))
    assert run.wait_for(10, timeout_s=15)
    rtsp_server.kill()
    down_at = time.monotonic()
    time.sleep(2.0)  # long enough for the stall watchdog and a few failed reconnects
    before_restart = len(run.frames)
    rtsp_server.start()
    assert run.wait_for(before_restart + 10, timeout_s=15), "frames did not resume after the restart"
    resumed_s = time.monotonic() - down_at
    run.stop()
    assert metric("facestream_source_reconnects_total", cfg.id) >= 1
    assert resumed_s < 2.0 + 10.0  # bound: backoff ceiling (0.5 s) + open + first frames, with slack
    indices = [f.index for f in run.frames]
    assert indices == list(range(len(indices))) or indices == sorted(set(indices))  # never reset, never repeat


@pytest.mark.parametrize("decoder", DECODERS)
def test_stall_is_detected_counted_and_reconnected(rtsp_server_factory, caplog, decoder):
    server = rtsp_server_factory(mode="stall", stall_after_frames=60)
    cfg = _config(server.url, "rtsp-stall", read_timeout_s=1.0, decoder=decoder)
    source = open_source(cfg)
    run = Collector(source)
    assert run.wait_for(5, timeout_s=15)
    deadline = time.monotonic() + 15
    while metric("facestream_source_stalls_total", cfg.id) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert metric("facestream_source_stalls_total", cfg.id) >= 1
    # A stalled stream is reconnected: each new session gets 60 frames before it stalls again.
    count = len(run.frames)
    assert run.wait_for(count + 5, timeout_s=15), "no frames after reconnecting from a stall"
    assert metric("facestream_source_reconnects_total", cfg.id) >= 1
    assert any("no frame for" in r.getMessage() for r in caplog.records)
    run.stop()
    # No reader may stay blocked: abandoned ones end once OpenCV's own read timeout fires.
    deadline = time.monotonic() + cfg.read_timeout_s + cfg.open_timeout_s + 2
    while source.reader_threads_alive and time.monotonic() < deadline:
        time.sleep(0.05)
    assert source.reader_threads_alive == 0


def test_silent_server_open_times_out_and_close_is_prompt(rtsp_server_factory):
    server = rtsp_server_factory(mode="silent")
    cfg = _config(server.url, "rtsp-silent", open_timeout_s=1.0)
    source = open_source(cfg)
    run = Collector(source)
    time.sleep(3.0)
    assert run.frames == []
    assert source.attempts >= 2, "an open that never answers must time out and be retried"
    assert run.stop() < 1.5


def test_server_that_never_comes_back_is_retried_with_backoff_until_close(rtsp_server_factory, caplog):
    server = rtsp_server_factory(start=False)  # nothing listens on this port
    cfg = _config(server.url, "rtsp-gone", reconnect_min_s=0.1, reconnect_max_s=0.4, reconnect_jitter=0.0)
    source = open_source(cfg)
    run = Collector(source)
    time.sleep(2.5)
    attempts = source.attempts
    # Backoff 0.1, 0.2, 0.4, 0.4 ... plus connection-refused time: several attempts, but no busy loop.
    assert 4 <= attempts <= 15, attempts
    assert metric("facestream_source_reconnects_total", cfg.id) == attempts - 1
    assert metric("facestream_source_up", cfg.id) == 0
    took = run.stop()
    assert took < 1.5
    # Logged once at first, not once per attempt.
    failures = [r for r in caplog.records if cfg.id in r.getMessage() and "reconnecting" in r.getMessage()]
    assert 1 <= len(failures) < attempts


def test_resolution_change_across_restart(rtsp_server):
    # OpenCV: the only decoder that needs a new connection to show a new size (PyAV: mid-stream test below).
    cfg = _config(rtsp_server.url, "rtsp-res", decoder="opencv")
    run = Collector(open_source(cfg))
    assert run.wait_for(5, timeout_s=15)
    rtsp_server.restart(width=480, height=360)
    assert run.wait_for(len(run.frames) + 40, timeout_s=20)
    run.stop()
    shapes = [f.image.shape[:2] for f in run.frames]
    assert shapes[0] == (240, 320) and shapes[-1] == (360, 480)
    assert metric("facestream_source_resolution_changes_total", cfg.id) == 1


@pytest.mark.skipif(not pyav_available(), reason="PyAV not installed (OpenCV rescales to the first size)")
def test_resolution_change_mid_stream(rtsp_server_factory, caplog):
    server = rtsp_server_factory(resize_after_frames=30, resize_width=640, resize_height=240)
    cfg = _config(server.url, "rtsp-midres", decoder="pyav")
    source = open_source(cfg)
    run = Collector(source)
    assert run.wait_for(70, timeout_s=15)
    run.stop()
    shapes = [f.image.shape[:2] for f in run.frames]
    assert shapes[0] == (240, 320) and shapes[-1] == (240, 640)
    assert metric("facestream_source_resolution_changes_total", cfg.id) == 1
    assert metric("facestream_source_reconnects_total", cfg.id) == 0, "frames must keep flowing on one connection"
    assert any("resolution changed from 320x240 to 640x240" in r.getMessage() for r in caplog.records)
