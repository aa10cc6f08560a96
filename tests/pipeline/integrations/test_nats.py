"""NatsIntegration against a real nats-server with JetStream on loopback: subjects, the stream it creates or
updates, deduplication by event id, the bounded buffer, and a server SIGKILLed for 10 s losing nothing."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time

import nats
import pytest
from nats.js.api import StreamConfig
from prometheus_client import REGISTRY
from pydantic import ValidationError

from facestream.pipeline.config.outputs import NatsConfig
from facestream.pipeline.integrations.jetstream import NatsIntegration, event_subject, subject_token

from ..helpers import wait_for
from .events import event, now_event
from .mqtt_support import free_port
from .nats_support import NatsServer, needs_nats, read_stream, stream_count

log = logging.getLogger("test-nats")


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def integration(tmp_path, url: str, name: str, **kw) -> NatsIntegration:
    return NatsIntegration(NatsConfig(enabled=True, url=url, **kw), tmp_path / "dead_letter", log, name=name)


def dead_letters(tmp_path, name: str) -> list[dict]:
    path = tmp_path / "dead_letter" / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def server(tmp_path):
    s = NatsServer(tmp_path).start()
    yield s
    s.stop()


def test_subjects_and_config_validation():
    assert subject_token("front door.1") == "front_door_1" and subject_token("a*b>c") == "a_b_c"
    assert subject_token("") == "_" and subject_token("José") == "José"
    assert event_subject("site.a", event(1, stream="cam 2")) == "site.a.cam_2.track_started"
    for bad in ("", "a..b", "a.*", "fac estream", "a.>"):
        with pytest.raises(ValidationError):
            NatsConfig(subject_prefix=bad)
    with pytest.raises(ValidationError):
        NatsConfig(stream="FACE.STREAM")


@needs_nats
@pytest.mark.slow
def test_events_stored_once_in_order_with_their_ids(tmp_path, server):
    integ = integration(tmp_path, server.url, "nats-order")
    evs = [event(1, "track_started", stream="cam 1"), event(2, "identified", "Eileen Collins", stream="cam 1"),
           event(3, "track_ended", "Eileen Collins", stream="cam 1")] + [event(i, stream="door.2") for i in range(4, 24)]
    for e in evs:
        integ.publish(e)
    wait_for(lambda: metric("facestream_integration_sent_total", integration="nats-order") >= len(evs), 15,
             "every PubAck")
    integ.close()
    got, total = read_stream(server.url)
    assert total == len(evs)
    assert [s.msg_id for s in got] == [e["event_id"] for e in evs]  # once each, in publish order
    assert [json.loads(s.data)["event_id"] for s in got] == [e["event_id"] for e in evs]
    assert got[1].subject == "facestream.cam_1.identified" and got[5].subject == "facestream.door_2.track_started"
    assert json.loads(got[1].data)["name"] == "Eileen Collins"
    assert json.loads(got[1].data)["time"] == "2024-05-01T12:00:00.002+00:00"
    assert metric("facestream_integration_queued", integration="nats-order") == 0
    assert not dead_letters(tmp_path, "nats-order")


@needs_nats
@pytest.mark.slow
def test_the_same_event_id_twice_is_stored_once(tmp_path, server):
    integ = integration(tmp_path, server.url, "nats-dedup")
    e = event(7, "identified", "Eileen Collins")
    integ.publish(e)
    integ.publish(dict(e))  # a replay (a restarted sink, a retried publish): the same Nats-Msg-Id
    integ.publish(event(8, "track_ended", "Eileen Collins"))
    wait_for(lambda: metric("facestream_integration_sent_total", integration="nats-dedup") >= 3, 15, "acks")
    integ.close()
    got, total = read_stream(server.url)
    assert total == 2 and [s.msg_id for s in got] == [e["event_id"], "e-cam1-track_ended-8"]


@needs_nats
@pytest.mark.slow
def test_an_existing_stream_gets_our_subjects_and_window(tmp_path, server):
    async def precreate() -> None:
        nc = await nats.connect(server.url)
        await nc.jetstream().add_stream(StreamConfig(name="FACESTREAM", subjects=["legacy.>"], duplicate_window=30))
        await nc.close()

    async def config() -> StreamConfig:
        nc = await nats.connect(server.url)
        try:
            return (await nc.jetstream().stream_info("FACESTREAM")).config
        finally:
            await nc.close()

    asyncio.run(precreate())
    integ = integration(tmp_path, server.url, "nats-update", duplicate_window_s=300)
    integ.publish(event(1))
    wait_for(lambda: metric("facestream_integration_sent_total", integration="nats-update") >= 1, 15, "ack")
    integ.close()
    cfg = asyncio.run(config())
    assert sorted(cfg.subjects) == ["facestream.>", "legacy.>"] and cfg.duplicate_window == 300


def test_publish_never_blocks_and_a_full_buffer_drops_the_oldest_to_dead_letter(tmp_path):
    integ = integration(tmp_path, f"nats://127.0.0.1:{free_port()}", "nats-full", max_buffered=3)  # nobody there
    t0 = time.monotonic()
    for i in range(1, 6):
        integ.publish(event(i))
    assert time.monotonic() - t0 < 0.5
    assert metric("facestream_integration_queued", integration="nats-full") == 3
    assert metric("facestream_integration_dropped_total", integration="nats-full", reason="queue_full") == 2
    assert [d["event"]["seq"] for d in dead_letters(tmp_path, "nats-full")] == [1, 2]
    integ.close()
    dead = dead_letters(tmp_path, "nats-full")
    assert [(d["event"]["seq"], d["reason"]) for d in dead] == [(1, "queue_full"), (2, "queue_full"),
                                                                (3, "shutdown"), (4, "shutdown"), (5, "shutdown")]
    assert metric("facestream_integration_up", integration="nats-full") == 0


@needs_nats
@pytest.mark.slow
def test_a_server_that_starts_late_gets_the_buffered_events(tmp_path):
    srv = NatsServer(tmp_path)
    integ = integration(tmp_path, srv.url, "nats-late")
    try:
        evs = [event(i) for i in range(1, 6)]
        for e in evs:
            integ.publish(e)
        time.sleep(1.0)
        srv.start()
        wait_for(lambda: metric("facestream_integration_sent_total", integration="nats-late") >= 5, 20, "acks")
        got, _ = read_stream(srv.url)
        assert [s.msg_id for s in got] == [e["event_id"] for e in evs]
    finally:
        integ.close()
        srv.stop()


@needs_nats
@pytest.mark.slow
def test_server_killed_for_10_seconds_loses_no_event(tmp_path, server):
    integ = integration(tmp_path, server.url, "nats-outage", ack_timeout_s=1.0)
    sent: list[dict] = []

    def publish_for(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            sent.append(now_event(len(sent) + 1, stream=f"cam{len(sent) % 3}"))
            integ.publish(sent[-1])
            time.sleep(0.05)

    try:
        publish_for(2.0)
        wait_for(lambda: metric("facestream_integration_sent_total", integration="nats-outage") >= len(sent), 10,
                 "the first events acknowledged")
        before = len(sent)
        server.stop(signal.SIGKILL)
        wait_for(lambda: metric("facestream_integration_up", integration="nats-outage") == 0, 5, "up == 0")
        publish_for(10.0)
        during = len(sent) - before
        assert during > 100
        assert metric("facestream_integration_queued", integration="nats-outage") >= during - 1
        server.start()  # same port, same store dir
        publish_for(1.0)
        wait_for(lambda: metric("facestream_integration_sent_total", integration="nats-outage") >= len(sent), 30,
                 f"all {len(sent)} events acknowledged after the restart")
        assert metric("facestream_integration_up", integration="nats-outage") == 1
    finally:
        integ.close()
    got, total = read_stream(server.url)
    assert total == len(sent) and stream_count(server.url) == len(sent)
    assert [s.msg_id for s in got] == [e["event_id"] for e in sent]  # every event once, in order
    assert [s.seq for s in got] == list(range(1, len(sent) + 1))
    assert not dead_letters(tmp_path, "nats-outage")
    assert metric("facestream_integration_dropped_total", integration="nats-outage", reason="queue_full") == 0
