"""MqttIntegration against a real mosquitto on loopback: topics, payloads, retained state, Home Assistant
discovery, availability and last will, and a broker that goes away and comes back."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import textwrap

import pytest
from prometheus_client import REGISTRY

from facestream.pipeline.config.outputs import MqttConfig
from facestream.pipeline.integrations.mqtt import MqttIntegration
from facestream.pipeline.integrations.payload import iso_time

from ..helpers import REPO, wait_for
from .events import event
from .mqtt_support import Broker, Subscriber, needs_mosquitto

pytestmark = [pytest.mark.slow, needs_mosquitto]
log = logging.getLogger("test-mqtt")


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path).start()
    yield b
    b.stop()


def integration(port: int, name: str, **kw) -> MqttIntegration:
    cfg = MqttConfig(enabled=True, port=port, client_id=f"facestream-{name}", **kw)
    integ = MqttIntegration(cfg, ["cam1"], log, name=name)
    wait_for(lambda: integ.connected, 10, "the integration to connect")
    return integ


def test_events_retained_state_and_discovery(broker):
    sub = Subscriber(broker.port)
    integ = integration(broker.port, "mqtt-topics", ha_discovery=True)
    try:
        evs = [event(1, "track_started"), event(2, "identified", "Eileen Collins"),
               event(3, "track_ended", "Eileen Collins")]
        for e in evs:
            integ.publish(e)
        got = sub.wait("facestream/cam1/events", 3)
        assert [r.json()["event_id"] for r in got] == [e["event_id"] for e in evs]
        assert got[1].json() == {**evs[1], "time": "2024-05-01T12:00:00.002+00:00"}
        sub.wait("facestream/person/Eileen_Collins", 2)  # identified, then track_ended
        wait_for(lambda: metric("facestream_integration_sent_total", integration="mqtt-topics") >= 8, 5, "acks")
        assert [r.topic for r in sub.messages if r.topic.startswith("facestream/")].count("facestream/availability")

        fresh = Subscriber(broker.port, client_id="fresh")
        retained = fresh.retained()
        fresh.close()
        assert "facestream/cam1/events" not in retained  # events are not retained, state is
        assert retained["facestream/availability"].payload == b"online"
        last = retained["facestream/cam1/last_person"].json()
        assert last["name"] == "Eileen Collins" and last["camera"] == "cam1"
        assert last["ts"] == iso_time(evs[1]["ts_ns"]) and last["event_id"] == evs[1]["event_id"]
        person = retained["facestream/person/Eileen_Collins"].json()
        assert person["last_seen"] == iso_time(evs[2]["ts_ns"]) and person["camera"] == "cam1"

        cam = retained["homeassistant/sensor/facestream_cam1/last_person/config"].json()
        assert cam["state_topic"] == "facestream/cam1/last_person"
        assert cam["availability_topic"] == "facestream/availability"
        assert cam["unique_id"] == "facestream_cam1_last_person"
        assert cam["value_template"] == "{{ value_json.name }}"
        assert cam["device"]["identifiers"] == ["facestream_cam1"] and cam["device"]["name"] == "facestream cam1"
        who = retained["homeassistant/sensor/facestream_person_Eileen_Collins/last_seen/config"].json()
        assert who["state_topic"] == "facestream/person/Eileen_Collins"
        assert who["device_class"] == "timestamp" and who["unique_id"] == "facestream_person_Eileen_Collins_last_seen"

        # Home Assistant restarting (its birth message) gets the discovery payloads again
        before = len(sub.on("homeassistant/sensor/facestream_cam1/last_person/config"))
        ha = Subscriber(broker.port, topic="nothing/here", client_id="ha")
        ha.client.publish("homeassistant/status", "online", qos=1).wait_for_publish(5)
        ha.close()
        sub.wait("homeassistant/sensor/facestream_cam1/last_person/config", before + 1)
    finally:
        integ.close()
    wait_for(lambda: sub.on("facestream/availability")[-1].payload == b"offline", 5, "offline after close")
    fresh = Subscriber(broker.port, client_id="after-close")
    assert fresh.retained()["facestream/availability"].payload == b"offline"
    fresh.close()
    sub.close()


def test_topic_prefix_and_sanitised_segments(broker):
    sub = Subscriber(broker.port)
    integ = integration(broker.port, "mqtt-names", topic_prefix="home/faces", qos=0)
    try:
        integ.publish(event(1, "identified", "Ann/Marie #1+2", stream="front door"))
        got = sub.wait("home/faces/front_door/events")
        assert got[0].json()["name"] == "Ann/Marie #1+2"
        person = sub.wait("home/faces/person/Ann_Marie_1_2")[0].json()
        assert person["name"] == "Ann/Marie #1+2"
        assert sub.wait("home/faces/front_door/last_person")[0].json()["camera"] == "front door"
    finally:
        integ.close()
        sub.close()


def test_broker_restart_delivers_queued_events_in_order(tmp_path):
    broker = Broker(tmp_path, persistent=True).start()
    # a persistent session: the broker keeps what arrives for it while it reconnects after the restart
    sub = Subscriber(broker.port, topic="facestream/cam1/events", client_id="watcher", persistent=True)
    integ = integration(broker.port, "mqtt-restart")
    try:
        integ.publish(event(0))
        sub.wait("facestream/cam1/events", 1)
        broker.stop()
        wait_for(lambda: not integ.connected, 10, "the integration to notice the broker is gone")
        assert metric("facestream_integration_up", integration="mqtt-restart") == 0
        evs = [event(i) for i in range(1, 21)]
        for e in evs:
            integ.publish(e)  # returns at once: the broker is away
        assert len(integ.queue) == 20
        broker.start()
        got = sub.wait("facestream/cam1/events", 21, timeout=30)
        assert [r.json()["seq"] for r in got] == list(range(21))
        wait_for(lambda: metric("facestream_integration_up", integration="mqtt-restart") == 1, 5, "up again")
        assert metric("facestream_integration_dropped_total", integration="mqtt-restart", reason="queue_full") == 0
    finally:
        integ.close()
        sub.close()
        broker.stop()


def test_a_full_queue_drops_the_oldest_and_counts_them(tmp_path):
    broker = Broker(tmp_path, persistent=True).start()
    sub = Subscriber(broker.port, topic="facestream/cam1/events", client_id="watcher-2", persistent=True)
    integ = integration(broker.port, "mqtt-full", max_queued=5)
    try:
        broker.stop()
        wait_for(lambda: not integ.connected, 10, "the integration to notice the broker is gone")
        for i in range(12):
            integ.publish(event(i))
        assert len(integ.queue) == 5
        assert metric("facestream_integration_dropped_total", integration="mqtt-full", reason="queue_full") == 7
        assert metric("facestream_integration_queued", integration="mqtt-full") == 5
        broker.start()
        got = sub.wait("facestream/cam1/events", 5, timeout=30)
        assert [r.json()["seq"] for r in got] == [7, 8, 9, 10, 11]  # the newest five, in order
        wait_for(lambda: metric("facestream_integration_sent_total", integration="mqtt-full") >= 6, 5, "acks")
    finally:
        integ.close()
        sub.close()
        broker.stop()


def test_last_will_says_offline_when_the_process_dies(broker):
    script = textwrap.dedent(f"""
        import logging, sys, time
        from facestream.pipeline.config.outputs import MqttConfig
        from facestream.pipeline.integrations.mqtt import MqttIntegration
        integ = MqttIntegration(MqttConfig(enabled=True, port={broker.port}, client_id="doomed"), ["cam1"],
                                logging.getLogger("x"))
        while not integ.connected:
            time.sleep(0.05)
        print("connected", flush=True)
        time.sleep(60)
    """)
    sub = Subscriber(broker.port, topic="facestream/availability")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "connected"
        wait_for(lambda: any(r.payload == b"online" for r in sub.on("facestream/availability")), 5, "online")
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        wait_for(lambda: sub.on("facestream/availability")[-1].payload == b"offline", 10, "the last will")
    finally:
        proc.kill()
        proc.wait()
        sub.close()


@pytest.mark.skipif(not __import__("shutil").which("mosquitto_passwd"), reason="mosquitto_passwd is not installed")
def test_password_comes_from_the_environment(tmp_path, monkeypatch):
    pw = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pw), "cam", "s3cret"], check=True, capture_output=True)
    broker = Broker(tmp_path, extra=f"allow_anonymous false\npassword_file {pw}").start()
    try:
        monkeypatch.setenv("FACESTREAM_MQTT_PASSWORD", "s3cret")
        good = integration(broker.port, "mqtt-auth", username="cam")
        good.close()
        monkeypatch.setenv("FACESTREAM_MQTT_PASSWORD", "wrong")
        bad = MqttIntegration(MqttConfig(enabled=True, port=broker.port, username="cam", client_id="bad"),
                              ["cam1"], log, name="mqtt-noauth")
        bad.publish(event(1))
        with pytest.raises(AssertionError):
            wait_for(lambda: bad.connected, 2, "a refused connection")
        assert metric("facestream_integration_up", integration="mqtt-noauth") == 0
        bad.close()
    finally:
        broker.stop()
