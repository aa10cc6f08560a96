"""WebhookIntegration against a real HTTP server on loopback: order, signatures, retries with growing gaps,
dead letters after max_attempts, no retry on 4xx, the kinds filter, shutdown."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from prometheus_client import REGISTRY

from facestream.pipeline.config.outputs import WebhookConfig
from facestream.pipeline.integrations import webhooks
from facestream.pipeline.integrations.webhooks import WebhookIntegration

from ..helpers import wait_for
from .events import event

log = logging.getLogger("test-webhooks")
SECRET = "correct horse battery staple"


class Receiver:
    """An HTTP server whose answer to request i is ``status(i)``; records every request."""

    def __init__(self, status=lambda i: 200):
        self.status, self.requests, self.lock = status, [], threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    i = len(receiver.requests)
                    code = receiver.status(i)
                    receiver.requests.append({"t": time.monotonic(), "headers": dict(self.headers), "body": body,
                                              "status": code})
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def accepted(self) -> list[dict]:
        with self.lock:
            return [json.loads(r["body"]) for r in self.requests if 200 <= r["status"] < 300]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def secret(monkeypatch):
    monkeypatch.setenv("FACESTREAM_WEBHOOK_SECRET", SECRET)


def hook(url: str, tmp_path, n: int, **kw) -> WebhookIntegration:
    cfg = WebhookConfig(url=url, **{"backoff_s": 0.05, "backoff_max_s": 1.0, "max_attempts": 6, **kw})
    return WebhookIntegration(cfg, n, tmp_path / "dead_letter", log)


def dead_letters(tmp_path, n: int) -> list[dict]:
    path = tmp_path / "dead_letter" / f"webhook-{n}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def dropped(name: str, reason: str) -> float:
    return REGISTRY.get_sample_value("facestream_integration_dropped_total",
                                     {"integration": name, "reason": reason}) or 0.0


def test_retries_until_the_server_recovers_in_order_and_signed(tmp_path, secret):
    rx = Receiver(lambda i: 500 if i < 4 else 200)
    wh = hook(rx.url, tmp_path, 11)
    try:
        evs = [event(i, "identified", "Eileen Collins") for i in range(5)]
        for e in evs:
            wh.publish(e)
        wait_for(lambda: len(rx.accepted()) == 5, 15, "all events accepted")
        assert [e["event_id"] for e in rx.accepted()] == [e["event_id"] for e in evs]  # in order
        first = rx.requests[:5]
        assert [r["headers"]["X-Facestream-Delivery"] for r in first] == [evs[0]["event_id"]] * 5
        assert [int(r["headers"]["X-Facestream-Attempt"]) for r in first] == [1, 2, 3, 4, 5]
        gaps = [b["t"] - a["t"] for a, b in itertools.pairwise(first)]
        nominal = [0.05 * 2**k for k in range(4)]  # backoff_s doubling (+ up to 10 % jitter)
        assert all(n <= g < n * 1.1 + 0.3 for g, n in zip(gaps, nominal, strict=True)), gaps
        assert gaps[3] > 2 * gaps[1] > 0, gaps
        for r in rx.requests:
            h = r["headers"]
            expected = hmac.new(SECRET.encode(), r["body"], hashlib.sha256).hexdigest()
            assert h["X-Facestream-Signature"] == f"sha256={expected}"
            assert h["Content-Type"] == "application/json" and h["X-Facestream-Event"] == "identified"
            assert abs(int(h["X-Facestream-Timestamp"]) - time.time()) < 60
        body = json.loads(rx.requests[-1]["body"])
        assert body == {**evs[-1], "time": body["time"]} and body["time"].startswith("2024-05-01T12:00:00")
        assert REGISTRY.get_sample_value("facestream_integration_retries_total", {"integration": "webhook-11"}) == 4
        assert REGISTRY.get_sample_value("facestream_integration_up", {"integration": "webhook-11"}) == 1
    finally:
        wh.close()
        rx.close()
    assert dead_letters(tmp_path, 11) == []


def test_a_server_that_always_fails_gets_dead_letters_after_max_attempts(tmp_path, secret):
    rx = Receiver(lambda i: 503)
    wh = hook(rx.url, tmp_path, 12, max_attempts=3, backoff_s=0.02)
    try:
        for i in range(2):
            wh.publish(event(i, "track_ended", "Eileen Collins"))
        wait_for(lambda: len(dead_letters(tmp_path, 12)) == 2, 10, "two dead letters")
    finally:
        wh.close()
        rx.close()
    assert len(rx.requests) == 6  # 3 attempts each, in order
    dl = dead_letters(tmp_path, 12)
    assert [d["event"]["seq"] for d in dl] == [0, 1]
    assert all(d["reason"] == "max_attempts" and d["attempts"] == 3 and "503" in d["error"] for d in dl)
    assert dl[0]["url"] == rx.url and dl[0]["event"] == event(0, "track_ended", "Eileen Collins")
    assert dropped("webhook-12", "max_attempts") == 2


def test_a_4xx_is_not_retried_and_408_429_are(tmp_path, secret):
    codes = {0: 400, 1: 429, 2: 200, 3: 408, 4: 200, 5: 404}
    rx = Receiver(lambda i: codes.get(i, 200))
    wh = hook(rx.url, tmp_path, 13)
    try:
        for i in range(4):
            wh.publish(event(i))
        wait_for(lambda: len(rx.requests) == 6, 10, "six requests")
        wait_for(lambda: len(dead_letters(tmp_path, 13)) == 2, 5, "two dead letters")
    finally:
        wh.close()
        rx.close()
    assert [json.loads(r["body"])["seq"] for r in rx.requests] == [0, 1, 1, 2, 2, 3]
    dl = dead_letters(tmp_path, 13)
    assert [(d["event"]["seq"], d["reason"], d["attempts"]) for d in dl] == [(0, "rejected", 1), (3, "rejected", 1)]
    assert [e["seq"] for e in rx.accepted()] == [1, 2]


def test_kinds_filter_and_unsigned_without_a_secret(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("FACESTREAM_WEBHOOK_SECRET", raising=False)
    rx = Receiver()
    with caplog.at_level(logging.WARNING):
        wh = hook(rx.url, tmp_path, 14, kinds=["identified", "identity_changed"])
    assert "no X-Facestream-Signature" in caplog.text
    try:
        for i, kind in enumerate(["track_started", "identified", "identity_changed", "track_ended"]):
            wh.publish(event(i, kind, "Eileen Collins"))
        wait_for(lambda: len(rx.accepted()) == 2, 5, "two events")
        time.sleep(0.2)
    finally:
        wh.close()
        rx.close()
    assert [e["kind"] for e in rx.accepted()] == ["identified", "identity_changed"]
    assert all("X-Facestream-Signature" not in r["headers"] for r in rx.requests)


def test_unknown_kinds_are_a_config_error():
    with pytest.raises(ValueError, match="unknown event kind"):
        WebhookConfig(url="http://127.0.0.1:1/", kinds=["identifed"])


def test_unreachable_overflow_and_shutdown_all_end_in_the_dead_letter_file(tmp_path, secret, monkeypatch):
    monkeypatch.setattr(webhooks, "CLOSE_GRACE_S", 0.3)
    wh = hook("http://127.0.0.1:9/nothing", tmp_path, 15, max_queued=3, backoff_s=5.0, max_attempts=100)
    t0 = time.monotonic()
    wh.publish(event(0))
    wait_for(lambda: wh.current is not None and wh.current.attempts >= 1, 5, "a first failed attempt")
    for i in range(1, 6):
        wh.publish(event(i))  # never blocks, although nothing listens; 1 and 2 are pushed out
    assert time.monotonic() - t0 < 0.5
    wh.close()
    assert time.monotonic() - t0 < 3
    dl = dead_letters(tmp_path, 15)
    assert sorted(d["event"]["seq"] for d in dl) == list(range(6)), dl  # nothing lost without a trace
    reasons = {d["event"]["seq"]: d["reason"] for d in dl}
    assert reasons[0] == "shutdown" and [reasons[i] for i in (1, 2)] == ["queue_full"] * 2
    assert "Connection" in next(d for d in dl if d["event"]["seq"] == 0)["error"]
    assert dropped("webhook-15", "queue_full") == 2 and dropped("webhook-15", "shutdown") == 4
    wh.publish(event(9))  # after close: straight to the dead-letter file
    assert dead_letters(tmp_path, 15)[-1]["reason"] == "closed"
