"""Camera credentials never reach logs or errors: user info and credential-like query values are masked."""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest
from helpers import unique_id

from facestream.pipeline.sources import SourceConfig, open_source
from facestream.pipeline.sources.uri import mask_secrets, mask_uri, redact


@pytest.mark.parametrize(("uri", "masked"), [
    ("rtsp://admin:hunter22@10.0.0.21:554/stream1", "rtsp://***@10.0.0.21:554/stream1"),
    ("rtsp://admin@cam/x", "rtsp://***@cam/x"),
    ("http://cam/snap.mjpg?user=admin&password=hunter22&res=hd", "http://cam/snap.mjpg?user=***&password=***&res=hd"),
    ("https://cam/v?token=abcdef", "https://cam/v?token=***"),
    ("rtsp://10.0.0.21/stream1", "rtsp://10.0.0.21/stream1"),
    ("/data/day1.mp4", "/data/day1.mp4"),
    ("webcam:0", "webcam:0"),
])
def test_mask_uri(uri, masked):
    assert mask_uri(uri) == masked


def test_mask_secrets_masks_every_url_in_a_line_of_text():
    line = ("sources[0]: Input should be a map (got 'rtsp://admin:hunter22@cam:554/x'); also "
            "http://cam/v?token=abcdef and rtsp:/root:toor99@cam2/y, not /data/a:b@c.mp4")
    out = mask_secrets(line)
    assert "hunter22" not in out and "abcdef" not in out and "toor99" not in out
    assert "'rtsp://***@cam:554/x'" in out and "http://cam/v?token=***" in out and "rtsp:/***@cam2/y" in out
    assert out.endswith("not /data/a:b@c.mp4"), "no scheme: a file name is left alone"
    assert mask_secrets("rtsp://cam/x is down") == "rtsp://cam/x is down"


def test_redact_removes_the_secret_from_a_library_message():
    uri = "rtsp://admin:hunter22@cam:554/x"
    msg = f"Server returned 401 Unauthorized for {uri} (user admin, password hunter22)"
    out = redact(msg, uri)
    assert "hunter22" not in out and "rtsp://***@cam:554/x" in out


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_failing_rtsp_source_with_credentials_logs_no_password(caplog):
    uri = f"rtsp://admin:pw-{unique_id('x')}@127.0.0.1:{_closed_port()}/cam"
    secret = uri.split(":")[2].split("@")[0]
    cfg = SourceConfig(id=unique_id("cred"), uri=uri, open_timeout_s=1.0, read_timeout_s=1.0,
                       reconnect_min_s=0.1, reconnect_max_s=0.2, reconnect_jitter=0.0)
    source = open_source(cfg)
    with caplog.at_level(logging.INFO):
        frames = source.frames()
        deadline = time.monotonic() + 2.0
        t = threading.Thread(target=lambda: [None for _ in frames], daemon=True)
        t.start()
        while time.monotonic() < deadline and not any("reconnecting" in r.getMessage() for r in caplog.records):
            time.sleep(0.05)
        source.close()
        t.join(3)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "reconnecting" in text, text
    assert secret not in text
    assert "rtsp://***@127.0.0.1" in text
