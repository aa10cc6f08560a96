"""`facestream run` on the demo with MQTT (a real mosquitto), a webhook (a real HTTP server) and NATS JetStream (a
real nats-server -js) switched on, in one run: every event the sink writes reaches all three, in the sink's
order, with the same ids; the astronaut is named on MQTT; the consumer example of docs/integrations.md reads the
identifications back from the stream."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import time

import pytest
import yaml

from ..helpers import REPO, cli, kill_tree, start
from .mqtt_support import Broker, Subscriber, needs_mosquitto
from .nats_support import NatsServer, needs_nats, read_stream
from .test_webhooks import Receiver

pytestmark = [pytest.mark.slow, needs_mosquitto, needs_nats]


def doc_consumer() -> str:
    text = (REPO / "docs" / "integrations.md").read_text()
    section = text.split("### A consumer", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def check_jetstream(url: str, stored: list[dict], tmp_path) -> None:
    got, total = read_stream(url)
    assert total == len(stored)
    assert [s.msg_id for s in got] == [e["event_id"] for e in stored]
    on_nats = [json.loads(s.data) for s in got]
    assert [e["event_id"] for e in on_nats] == [e["event_id"] for e in stored]
    assert [s.subject for s in got] == [f"facestream.demo.{e['kind']}" for e in stored]
    identified = [e for e in on_nats if e["kind"] == "identified"]
    assert identified and all(e["name"] == "Eileen Collins" for e in identified)

    script = tmp_path / "consumer.py"
    script.write_text(doc_consumer())
    consumer = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env={**os.environ, "NATS_URL": url}, text=True)
    time.sleep(4.0)
    consumer.kill()
    lines = consumer.communicate(timeout=10)[0].splitlines()
    assert len(lines) == len(identified), lines
    assert all(line.endswith(" demo Eileen Collins") for line in lines), lines


def test_demo_run_publishes_events_to_mqtt_a_webhook_and_jetstream(tmp_path):
    broker = Broker(tmp_path).start()
    nats_server = NatsServer(tmp_path).start()
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
           "FACESTREAM__INTEGRATIONS__NATS": yaml.safe_dump({"enabled": True, "url": nats_server.url},
                                                            default_flow_style=True).strip(),
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
        check_jetstream(nats_server.url, stored, tmp_path)
        assert not (out / "dead_letter").exists()
    finally:
        sub.close()
        rx.close()
        broker.stop()
        nats_server.stop()
