"""Events to an MQTT broker (paho-mqtt 2.x): topics and payloads in mqtt_topics.py, docs/integrations.md.

The sink's thread only appends to a bounded queue (``max_queued`` messages; when full the oldest is dropped
and counted) and returns. A sender thread hands messages to paho while the broker is connected, at most
``WINDOW`` unacknowledged at a time; paho's network thread connects, reconnects with backoff, and after a
reconnect re-sends what was in flight before anything newer goes out, so delivery stays in order. A broker
that goes away therefore costs nothing but queue space, and everything queued follows once it is back.
"""

from __future__ import annotations

import collections
import logging
import os
import socket
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from .. import metrics as m
from ..config.outputs import MqttConfig
from .mqtt_topics import STATE_QOS, Message, Topics
from .payload import KNOWN_KINDS

WINDOW = 32  # messages handed to paho and not yet acknowledged (paho itself holds no more than this)
CLOSE_GRACE_S = 2.0
PASSWORD_ENV = "FACESTREAM_MQTT_PASSWORD"


class MqttIntegration:
    """``publish(event)`` never blocks; ``close()`` delivers what it can within CLOSE_GRACE_S, then says offline."""

    def __init__(self, cfg: MqttConfig, cameras: list[str], log: logging.Logger, name: str = "mqtt"):
        self.cfg, self.log, self.name = cfg, log, name
        self.topics = Topics(cfg)
        self.cond = threading.Condition()
        self.queue: collections.deque[Message] = collections.deque()
        self.control: collections.deque[Message] = collections.deque()  # availability + discovery, sent first
        self.inflight: dict[int, Message] = {}  # mid -> message, in publish order
        self.acked_early: set[int] = set()  # acknowledged before the sender recorded the mid
        self.cameras: set[str] = set(cameras)
        self.persons: set[str] = set()
        self.connected = self.resending = self.closing = self.stopped = False
        self.ever_connected = self.outage_logged = self.full_logged = False
        self.client = self._client()
        self.sender = threading.Thread(target=self._send_loop, name=f"{name}-sender", daemon=True)
        self.sender.start()
        m.INTEGRATION_UP.labels(name).set(0)
        m.INTEGRATION_QUEUED.labels(name).set(0)
        self.client.connect_async(cfg.host, cfg.port, keepalive=30)
        self.client.loop_start()

    def _client(self) -> mqtt.Client:
        cid = self.cfg.client_id or f"facestream-{socket.gethostname()}"
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv311, clean_session=True)
        client.will_set(self.topics.availability, "offline", qos=STATE_QOS, retain=True)
        if self.cfg.username:
            client.username_pw_set(self.cfg.username, os.environ.get(PASSWORD_ENV) or None)
        client.reconnect_delay_set(1, 15)
        client.connect_timeout = 5.0
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    # --- the sink's side ---------------------------------------------------------------------------------

    def publish(self, event: dict[str, Any]) -> None:
        try:
            messages = self.topics.for_event(event)
        except Exception as exc:  # an event we cannot render must not stop the sink
            m.INTEGRATION_DROPPED.labels(self.name, "bad_event").inc()
            self.log.warning("mqtt: cannot render event %r: %s", event.get("event_id"), exc)
            return
        camera, name = str(event.get("stream_id") or "unknown"), event.get("name")
        dropped = 0
        with self.cond:
            if self.closing:
                m.INTEGRATION_DROPPED.labels(self.name, "closed").inc(len(messages))
                return
            if self.cfg.ha_discovery:
                if camera not in self.cameras:
                    self.cameras.add(camera)
                    messages.insert(0, self.topics.camera_discovery(camera))
                if name and event.get("kind") in KNOWN_KINDS and name not in self.persons:
                    self.persons.add(str(name))
                    messages.insert(0, self.topics.person_discovery(str(name)))
            for msg in messages:
                if len(self.queue) >= self.cfg.max_queued:
                    self.queue.popleft()
                    dropped += 1
                self.queue.append(msg)
            m.INTEGRATION_QUEUED.labels(self.name).set(len(self.queue))
            self.cond.notify_all()
            first_full = dropped and not self.full_logged
            self.full_logged = self.full_logged or bool(dropped)
        if dropped:
            m.INTEGRATION_DROPPED.labels(self.name, "queue_full").inc(dropped)
            if first_full:
                self.log.warning("mqtt: queue full (max_queued=%d) while the broker is away; dropping the oldest "
                                 "messages (counted in facestream_integration_dropped_total)", self.cfg.max_queued)

    def close(self) -> None:
        deadline = time.monotonic() + CLOSE_GRACE_S
        with self.cond:
            self.closing = True
            self.cond.notify_all()
            while (self.queue or self.control or self.inflight) and time.monotonic() < deadline:
                self.cond.wait(0.05)
            left = len(self.queue) + len(self.inflight)
            self.queue.clear()
            self.stopped = True
            connected = self.connected
            self.cond.notify_all()
        self.sender.join(1.0)
        if left:
            m.INTEGRATION_DROPPED.labels(self.name, "shutdown").inc(left)
            self.log.warning("mqtt: %d message(s) not delivered at shutdown", left)
        if connected:
            try:
                info = self.client.publish(self.topics.availability, "offline", qos=STATE_QOS, retain=True)
                info.wait_for_publish(max(0.2, deadline - time.monotonic()))
            except (RuntimeError, ValueError):
                pass  # the broker went away meanwhile: the last will says offline instead
        self.client.disconnect()
        stopper = threading.Thread(target=self.client.loop_stop, daemon=True)  # never hang the sink's teardown
        stopper.start()
        stopper.join(1.0)
        m.INTEGRATION_UP.labels(self.name).set(0)
        m.INTEGRATION_QUEUED.labels(self.name).set(0)

    # --- the sender thread -------------------------------------------------------------------------------

    def _next(self) -> Message | None:
        """The next message to hand to paho, or None when the sender is stopped (call with the lock held)."""
        while not self.stopped:
            if self.connected and len(self.inflight) < WINDOW:
                if self.control:
                    return self.control.popleft()
                if self.queue and not self.resending:
                    msg = self.queue.popleft()
                    m.INTEGRATION_QUEUED.labels(self.name).set(len(self.queue))
                    return msg
            self.cond.wait(0.5)
        return None

    def _send_loop(self) -> None:
        while True:
            with self.cond:
                msg = self._next()
            if msg is None:
                return
            try:
                info = self.client.publish(msg.topic, msg.payload, qos=msg.qos, retain=msg.retain)
            except ValueError as exc:  # a topic or payload the protocol cannot carry
                m.INTEGRATION_DROPPED.labels(self.name, "error").inc()
                self.log.warning("mqtt: cannot publish to %r: %s", msg.topic, exc)
                continue
            with self.cond:
                if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                    m.INTEGRATION_DROPPED.labels(self.name, "error").inc()
                elif msg.qos == 0 and info.rc == mqtt.MQTT_ERR_NO_CONN:
                    m.INTEGRATION_DROPPED.labels(self.name, "disconnected").inc()  # QoS 0: at most once
                elif info.mid in self.acked_early:
                    self.acked_early.discard(info.mid)
                    m.INTEGRATION_SENT.labels(self.name).inc()
                else:
                    self.inflight[info.mid] = msg  # a QoS>0 message paho re-sends itself after a reconnect
                    if not self.connected:
                        self.resending = True

    # --- paho's network thread ---------------------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            if not self.outage_logged:
                self.log.error("mqtt: broker %s:%d refused the connection: %s", self.cfg.host, self.cfg.port, reason)
                self.outage_logged = True
            return
        with self.cond:
            self.control = collections.deque(self._state_messages())
            self.connected = True
            queued = len(self.queue)
            again = self.ever_connected
            self.ever_connected, self.outage_logged, self.full_logged = True, False, False
            self.cond.notify_all()
        if self.cfg.ha_discovery:
            client.subscribe(self.topics.ha_status(), qos=1)
        m.INTEGRATION_UP.labels(self.name).set(1)
        self.log.info("mqtt: %s broker %s:%d (topics under %s/)%s", "reconnected to" if again else "connected to",
                      self.cfg.host, self.cfg.port, self.topics.prefix,
                      f"; delivering {queued} queued message(s)" if queued else "")

    def _state_messages(self) -> list[Message]:
        """Availability and (with ha_discovery) every discovery payload: sent again on each (re)connect."""
        out = [Message(self.topics.availability, b"online", STATE_QOS, True)]
        if self.cfg.ha_discovery:
            out += [self.topics.camera_discovery(c) for c in sorted(self.cameras)]
            out += [self.topics.person_discovery(p) for p in sorted(self.persons)]
        return out

    def _on_connect_fail(self, _client: mqtt.Client, _u: Any) -> None:
        if not self.outage_logged:
            self.log.warning("mqtt: broker %s:%d unreachable; retrying, events are queued (up to %d messages)",
                             self.cfg.host, self.cfg.port, self.cfg.max_queued)
            self.outage_logged = True

    def _on_disconnect(self, _client: mqtt.Client, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        lost = 0
        with self.cond:
            self.connected = False
            for mid in [mid for mid, msg in self.inflight.items() if msg.qos == 0]:
                del self.inflight[mid]  # QoS 0 is not re-sent by paho
                lost += 1
            self.resending = bool(self.inflight)
            stopping = self.stopped
            self.cond.notify_all()
        m.INTEGRATION_UP.labels(self.name).set(0)
        if lost:
            m.INTEGRATION_DROPPED.labels(self.name, "disconnected").inc(lost)
        if not stopping and not self.outage_logged:
            self.log.warning("mqtt: lost broker %s:%d (%s); reconnecting, events are queued", self.cfg.host,
                             self.cfg.port, reason)
            self.outage_logged = True

    def _on_publish(self, _client: mqtt.Client, _u: Any, mid: int, _reason: Any, _props: Any) -> None:
        with self.cond:
            if self.inflight.pop(mid, None) is not None:
                m.INTEGRATION_SENT.labels(self.name).inc()
                if not self.inflight:
                    self.resending = False
            else:
                self.acked_early.add(mid)
            self.cond.notify_all()

    def _on_message(self, _client: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == self.topics.ha_status() and msg.payload == b"online":  # Home Assistant restarted
            with self.cond:
                self.control.extend(self._state_messages())
                self.cond.notify_all()
