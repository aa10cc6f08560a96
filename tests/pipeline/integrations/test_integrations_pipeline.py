"""`facestream run` on the demo with MQTT (a real mosquitto) and a webhook (a real HTTP server) switched on:
every event the sink writes reaches both, in the sink's order, and the astronaut is named on MQTT."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
import yaml

from ..helpers import cli, kill_tree, start
from .mqtt_support import Broker, Subscriber, needs_mosquitto
from .test_webhooks import Receiver

pytestmark = [pytest.mark.slow, needs_mosquitto]


def test_demo_run_publishes_events_to_mqtt_and_a_webhook(tmp_path):
    broker = Broker(tmp_path).start()
    sub = Subscriber(broker.port)
    rx = Receiver(lambda i: 500 if i == 0 else 200)  # the first POST fails: retried, still in order
    out = tmp_path / "out"
    mqtt = {"enabled": True, "port": broker.port, "ha_discovery": True, "client_id": "facestream-e2e"}
    hooks = [{"url": rx.url, "backoff_s": 0.05}]
    env = {"FACESTREAM__TRANSPORT__RUN_DIR": str(tmp_path / "run"),
           "FACESTREAM__METRICS__PORTS": "{capture: 0, preprocess: 0, inference: 0, sink: 0}",
           "FACESTREAM_MODELS": str(tmp_path / "models"), "FACESTREAM_GALLERY": str(tmp_path / "gallery.db"),
           "FACESTREAM__INTEGRATIONS__MQTT": yaml.safe_dump(mqtt, default_flow_style=True).strip(),
           "FACESTREAM__INTEGRATIONS__WEBHOOKS": yaml.safe_dump(hooks, default_flow_style=True).strip(),
           "FACESTREAM_WEBHOOK_SECRET": "e2e-secret"}
    proc = start(cli("run", "--out", str(out)), tmp_path / "log.txt", env=env)
    try:
        assert proc.wait(300) == 0, (tmp_path / "log.txt").read_text()[-3000:]
    finally:
        kill_tree(proc)
    try:
        stored = [json.loads(line) for p in sorted((out / "events").glob("*.jsonl")) for line in p.read_text().splitlines()]
        assert any(e["kind"] == "identified" and e["name"] == "Eileen Collins" for e in stored), stored
        on_mqtt = [r.json() for r in sub.on("facestream/demo/events")]
        assert [e["event_id"] for e in on_mqtt] == [e["event_id"] for e in stored]
        assert any(e["kind"] == "identified" and e["name"] == "Eileen Collins" for e in on_mqtt)
        assert sub.on("facestream/availability")[-1].payload == b"offline"  # the sink closed cleanly

        fresh = Subscriber(broker.port, client_id="after-run")
        retained = fresh.retained()
        fresh.close()
        person = retained["facestream/person/Eileen_Collins"].json()
        assert person["camera"] == "demo" and person["name"] == "Eileen Collins"
        assert retained["facestream/demo/last_person"].json()["name"] == "Eileen Collins"
        assert "homeassistant/sensor/facestream_demo/last_person/config" in retained

        accepted = rx.accepted()
        assert [e["event_id"] for e in accepted] == [e["event_id"] for e in stored]
        assert rx.requests[0]["status"] == 500 and rx.requests[0]["body"] == rx.requests[1]["body"]
        for r in rx.requests:
            sig = hmac.new(b"e2e-secret", r["body"], hashlib.sha256).hexdigest()
            assert r["headers"]["X-Facestream-Signature"] == f"sha256={sig}"
        assert not (out / "dead_letter").exists()
    finally:
        sub.close()
        rx.close()
        broker.stop()
