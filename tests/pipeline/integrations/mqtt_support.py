"""A real mosquitto on loopback (subprocess) and a paho subscriber that records what it receives."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.loopback_server import LoopbackServer

from ..helpers import wait_for

needs_mosquitto = pytest.mark.skipif(shutil.which("mosquitto") is None,
                                     reason="mosquitto is not installed (apt-get install mosquitto)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker(LoopbackServer):
    """``mosquitto -c CONF`` on 127.0.0.1:port; ``persistent`` keeps sessions and retained messages across a
    restart (saved on SIGTERM), so a subscriber's persistent session gets what was published meanwhile."""

    name = "mosquitto"

    def __init__(self, tmp: Path, persistent: bool = False, extra: str = ""):
        super().__init__(tmp, free_port())
        self.conf = tmp / "mosquitto.conf"
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true" if "password_file" not in extra else "",
                 f"persistence {'true' if persistent else 'false'}", extra]
        if persistent:
            lines.append(f"persistence_location {tmp}/")
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to user mosquitto, who cannot read or write tmp
        self.conf.write_text("\n".join(lines) + "\n")


    def command(self) -> list[str]:
        return ["mosquitto", "-c", str(self.conf)]


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool

    def json(self) -> dict:
        return json.loads(self.payload)


class Subscriber:
    """Subscribes to ``topic`` and records every message; reconnects (and resubscribes) by itself."""

    def __init__(self, port: int, topic: str = "#", client_id: str = "", persistent: bool = False):
        self.topic, self.messages, self.lock = topic, [], threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=not persistent)
        self.client.on_connect = lambda c, *_: c.subscribe(self.topic, qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 1)
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        assert self.subscribed.wait(10), "subscriber got no SUBACK"

    def _on_message(self, _c, _u, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append(Received(msg.topic, bytes(msg.payload), bool(msg.retain)))

    def on(self, topic: str) -> list[Received]:
        with self.lock:
            return [r for r in self.messages if r.topic == topic]

    def wait(self, topic: str, count: int = 1, timeout: float = 10.0) -> list[Received]:
        return wait_for(lambda: (got := self.on(topic)) and len(got) >= count and got, timeout,
                        f"{count} message(s) on {topic} (have {len(self.on(topic))}: {self.topics()})")

    def topics(self) -> list[str]:
        with self.lock:
            return sorted({r.topic for r in self.messages})

    def retained(self, settle: float = 0.5) -> dict[str, Received]:
        """What a fresh subscriber gets as retained (call right after constructing it)."""
        time.sleep(settle)
        with self.lock:
            return {r.topic: r for r in self.messages if r.retain}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
