"""The MQTT topics and payloads of one event, and the Home Assistant discovery payloads (docs/integrations.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from facestream import __version__

from ..config.outputs import MqttConfig
from .payload import KNOWN_KINDS, event_json, ha_slug, iso_time, topic_segment

STATE_QOS = 1  # retained state (availability, last person, discovery) is always sent at least once


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool


def _json(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


class Topics:
    """Topic names under ``topic_prefix`` and the messages an event turns into."""

    def __init__(self, cfg: MqttConfig):
        self.cfg = cfg
        self.prefix = cfg.topic_prefix
        self.availability = f"{self.prefix}/availability"
        self.node = ha_slug(self.prefix)

    def events(self, camera: str) -> str:
        return f"{self.prefix}/{topic_segment(camera)}/events"

    def last_person(self, camera: str) -> str:
        return f"{self.prefix}/{topic_segment(camera)}/last_person"

    def person(self, name: str) -> str:
        return f"{self.prefix}/person/{topic_segment(name)}"

    def for_event(self, event: dict[str, Any]) -> list[Message]:
        """Every event on ``<prefix>/<camera>/events``; a named person also updates the retained
        ``<camera>/last_person`` (identified, identity_changed) and ``person/<name>`` (those and track_ended)."""
        camera = str(event.get("stream_id") or "unknown")
        out = [Message(self.events(camera), event_json(event), self.cfg.qos, False)]
        name, kind = event.get("name"), event.get("kind")
        if not name:
            return out
        when = iso_time(event.get("ts_ns") if isinstance(event.get("ts_ns"), int) else None)
        if kind in KNOWN_KINDS:
            last = {"name": name, "camera": camera, "ts": when, "event_id": event.get("event_id"),
                    "score": event.get("score"), "confidence": event.get("confidence")}
            out.append(Message(self.last_person(camera), _json(last), STATE_QOS, True))
        if kind in (*KNOWN_KINDS, "track_ended"):
            seen = {"name": name, "last_seen": when, "camera": camera, "event_id": event.get("event_id"),
                    "kind": kind}
            out.append(Message(self.person(str(name)), _json(seen), STATE_QOS, True))
        return out

    # --- Home Assistant discovery ----------------------------------------------------------------------

    def _device(self, camera: str | None) -> dict[str, Any]:
        if camera is None:
            return {"identifiers": [self.node], "name": "facestream", "manufacturer": "facestream",
                    "model": "face recognition", "sw_version": __version__}
        return {"identifiers": [f"{self.node}_{ha_slug(camera)}"], "name": f"facestream {camera}",
                "manufacturer": "facestream", "model": "face recognition camera", "sw_version": __version__,
                "via_device": self.node}

    def _common(self) -> dict[str, Any]:
        return {"availability_topic": self.availability, "payload_available": "online",
                "payload_not_available": "offline", "origin": {"name": "facestream", "sw_version": __version__}}

    def camera_discovery(self, camera: str) -> Message:
        """A sensor per camera: the last identified person's name, the event's fields as attributes."""
        node = f"{self.node}_{ha_slug(camera)}"
        state = self.last_person(camera)
        config = {"name": "Last person", "unique_id": f"{node}_last_person", "state_topic": state,
                  "value_template": "{{ value_json.name }}", "json_attributes_topic": state,
                  "icon": "mdi:account-eye", "device": self._device(camera), **self._common()}
        return Message(f"{self.cfg.ha_prefix}/sensor/{node}/last_person/config", _json(config), STATE_QOS, True)

    def person_discovery(self, name: str) -> Message:
        """A timestamp sensor per person seen: when and (attribute) on which camera they were last seen."""
        node = f"{self.node}_person_{ha_slug(name)}"
        state = self.person(name)
        config = {"name": f"{name} last seen", "unique_id": f"{node}_last_seen", "state_topic": state,
                  "value_template": "{{ value_json.last_seen }}", "json_attributes_topic": state,
                  "device_class": "timestamp", "icon": "mdi:account-clock", "device": self._device(None),
                  **self._common()}
        return Message(f"{self.cfg.ha_prefix}/sensor/{node}/last_seen/config", _json(config), STATE_QOS, True)

    def ha_status(self) -> str:
        """Home Assistant's birth topic: "online" there means it restarted and wants discovery again."""
        return f"{self.cfg.ha_prefix}/status"
