"""The fanout the sink builds from ``integrations:``, topic and id sanitising, and the sink handing each event
to the integrations exactly once (a replayed event id is not sent again)."""

from __future__ import annotations

import logging

from facestream.pipeline.config.outputs import EVENT_KINDS
from facestream.pipeline.integrations import EventFanout, build_fanout
from facestream.pipeline.integrations.dead_letter import redact_url
from facestream.pipeline.integrations.payload import event_payload, ha_slug, topic_segment
from facestream.pipeline.integrations.webhooks import WebhookIntegration
from facestream.pipeline.recognition.events import EventKind
from facestream.pipeline.records import EventRecord
from facestream.pipeline.stages.sink import SinkStage

from ..helpers import wait_for
from ..stages.memory_outlet import config
from .events import event
from .test_webhooks import Receiver


def test_config_kinds_are_the_event_kinds():
    assert set(EVENT_KINDS) == {k.value for k in EventKind}


def test_topic_segments_and_home_assistant_ids():
    assert topic_segment("Eileen Collins") == "Eileen_Collins"
    assert topic_segment("a/b+c#d") == "a_b_c_d"
    assert topic_segment("$SYS") == "SYS" and topic_segment("") == "_" and topic_segment("José") == "José"
    assert ha_slug("Eileen Collins") == "Eileen_Collins" and ha_slug("front-door_2") == "front-door_2"
    assert ha_slug("José").startswith("Jos_") and ha_slug("José") != ha_slug("Josè")  # no collision
    assert event_payload(event(2))["time"] == "2024-05-01T12:00:00.002+00:00"
    assert redact_url("https://u:pw@example.com:8443/x?y=1") == "https://example.com:8443/x?y=1"


def test_no_integrations_by_default(tmp_path):
    fanout = build_fanout(config(tmp_path), logging.getLogger("t"))
    assert fanout.integrations == []
    fanout.publish(event(1))
    fanout.close()


def test_a_failing_integration_does_not_stop_the_others():
    class Broken:
        def publish(self, _e):
            raise RuntimeError("boom")

        def close(self):
            raise RuntimeError("boom")

    class Keeps:
        got: list = []

        def publish(self, e):
            self.got.append(e)

        def close(self):
            pass

    keeps = Keeps()
    fanout = EventFanout([Broken(), keeps])
    fanout.publish(event(1))
    fanout.close()
    assert keeps.got == [event(1)]


def test_the_sink_sends_each_new_event_once(tmp_path, monkeypatch):
    monkeypatch.setenv("FACESTREAM_WEBHOOK_SECRET", "s")
    rx = Receiver()
    cfg = config(tmp_path, integrations={"webhooks": [{"url": rx.url, "kinds": ["identified"]}]})
    sink = SinkStage(cfg)
    sink.setup()
    assert [type(i) for i in sink.fanout.integrations] == [WebhookIntegration]
    try:
        named = EventRecord.from_meta(event(1, "identified", "Eileen Collins", stream="cam"))
        sink.store_event(EventRecord.from_meta(event(0, stream="cam")))  # filtered out by kinds
        sink.store_event(named)
        sink.store_event(named)  # a replay: same id
        wait_for(lambda: len(rx.accepted()) == 1, 5, "one POST")
    finally:
        sink.teardown()
        rx.close()
    assert [e["event_id"] for e in rx.accepted()] == [named.event_id]
