"""The live view: frames from a real ZeroMQ PUB (the sink's preview feed format) reach a browser as MJPEG parts;
malformed messages are dropped and counted; /api/live shows each camera's header figures."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

from facestream.pipeline.metrics import WEB_REJECTED

from ..helpers import wait_for
from .conftest import Client, Feed


def _read_parts(resp: http.client.HTTPResponse, boundary: str, count: int) -> list[bytes]:
    """``count`` JPEG bodies from a multipart/x-mixed-replace stream, each read by its Content-Length."""
    parts = []
    while len(parts) < count:
        line = resp.readline()
        assert line, "the stream ended"
        if line.strip() != f"--{boundary}".encode():
            continue
        headers = {}
        while (h := resp.readline().strip()):
            k, _, v = h.decode().partition(":")
            headers[k.strip().lower()] = v.strip()
        assert headers["content-type"] == "image/jpeg"
        parts.append(resp.read(int(headers["content-length"])))
    return parts


def test_mjpeg_stream_delivers_new_jpeg_frames(web):
    server, c = web
    with Feed(server.app.state.cfg.web.preview_pub, cameras=("cam1", "cam3")) as feed:
        wait_for(lambda: server.app.state.hub.latest("cam1"), 20, "the first preview frame")
        parts = urlsplit(server.url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=20)
        conn.request("GET", "/live/cam1.mjpg")
        resp = conn.getresponse()
        assert resp.status == 200
        ctype = resp.getheader("Content-Type")
        assert ctype.startswith("multipart/x-mixed-replace; boundary=")
        frames = _read_parts(resp, ctype.split("boundary=")[1], 3)
        conn.close()
        assert all(f[:2] == b"\xff\xd8" and f[-2:] == b"\xff\xd9" for f in frames)
        assert len(set(frames)) == 3, "the parts are not new frames"

        live = c.get("/api/live").json()
        cams = {row["camera"]: row for row in live["cameras"]}
        assert list(cams)[:2] == ["cam1", "cam2"]  # configured first, then heard from
        assert cams["cam1"]["live"] and cams["cam1"]["fps"] == 9.5 and cams["cam1"]["latency_ms"] == 42.0
        assert cams["cam1"]["dropped"] == 3 and cams["cam1"]["faces"] == [{"identity": "unknown#1", "track": 7}]
        assert cams["cam3"]["latency_ms"] == 43.0 and cams["cam3"]["url"] == "/live/cam3.mjpg"
        assert cams["cam2"]["frames"] == 0 and not cams["cam2"]["live"]
        snap = c.get("/live/cam3.jpg")
        assert snap.status == 200 and snap.body[:2] == b"\xff\xd8"
        assert c.get("/live/cam2.jpg").status == 404
        assert feed.sent > 0


def test_malformed_preview_messages_are_dropped_and_counted(web):
    server, c = web
    hub = server.app.state.hub
    before = WEB_REJECTED.labels("preview_malformed")._value.get()
    with Feed(server.app.state.cfg.web.preview_pub, fps=20) as feed:
        wait_for(lambda: hub.latest("cam1"), 20, "the first preview frame")
        feed.extra += [[b"cam1", b"{}"], [b"cam1", b"not json", b"\xff\xd8x"], [b"cam1", b"{}", b"GIF89a"],
                       [b"", b"{}", b"\xff\xd8"], [b"cam1", b"[1]", b"\xff\xd8"], [b"\xff\xfe", b"{}", b"\xff\xd8"]]
        wait_for(lambda: hub.rejected >= 6, 20, "the six malformed messages to be refused")
        number = hub.latest("cam1").number
        wait_for(lambda: hub.latest("cam1").number > number, 10, "good frames after the bad ones")
    assert WEB_REJECTED.labels("preview_malformed")._value.get() - before == 6
    assert c.get("/api/status").json()["web"]["preview_rejected"] == 6
    metrics = c.get("/metrics").body.decode()
    assert 'facestream_web_rejected_total{reason="preview_malformed"}' in metrics


def test_a_stream_that_the_client_leaves_is_closed(web):
    server, _ = web
    with Feed(server.app.state.cfg.web.preview_pub):
        wait_for(lambda: server.app.state.hub.latest("cam1"), 20, "the first preview frame")
        parts = urlsplit(server.url)
        for _ in range(8):  # more than a browser's 6 connections per host: closed streams must not pile up
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
            conn.request("GET", "/live/cam1.mjpg")
            resp = conn.getresponse()
            assert resp.status == 200 and resp.read(100)
            conn.close()
        wait_for(lambda: server.app.state.hub.streams == 0, 10, "the server to end the streams nobody reads")
        assert Client(server.url).get("/api/live").status == 200
