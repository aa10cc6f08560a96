"""What the integrations send: the event JSON, timestamps, topic segments and Home Assistant ids."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import time
from typing import Any

KNOWN_KINDS = ("identified", "identity_changed")  # events that name a person (when the gallery knows them)
_TOPIC_UNSAFE = re.compile(r"[\s+#/\x00-\x1f\x7f]+")
_SLUG_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def iso_time(ts_ns: int | None = None) -> str:
    """UTC ISO 8601 with milliseconds, e.g. ``2024-05-01T12:00:00.123+00:00`` (now when ``ts_ns`` is None)."""
    ns = time.time_ns() if ts_ns is None else int(ts_ns)
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.timezone.utc).isoformat(timespec="milliseconds")


def event_payload(event: dict[str, Any]) -> dict[str, Any]:
    """The event as stored in events/DAY.jsonl, plus ``time`` (its ``ts_ns`` as ISO 8601)."""
    out = dict(event)
    if isinstance(event.get("ts_ns"), int):
        out["time"] = iso_time(event["ts_ns"])
    return out


def event_json(event: dict[str, Any]) -> bytes:
    return json.dumps(event_payload(event), separators=(",", ":"), ensure_ascii=False, default=str).encode()


def topic_segment(value: object) -> str:
    """One MQTT topic level from a camera id or a name: whitespace, ``+ # /`` and control characters become
    ``_``; a leading ``$`` (reserved for broker topics) is dropped. ``Eileen Collins`` -> ``Eileen_Collins``."""
    seg = _TOPIC_UNSAFE.sub("_", str(value)).lstrip("$")
    return seg or "_"


def ha_slug(value: object) -> str:
    """An id Home Assistant accepts in discovery topics and unique ids (``[A-Za-z0-9_-]``). Names that lose
    more than spaces (``José``, ``a/b``) get a short hash so that two of them do not collide."""
    text = str(value)
    slug = _SLUG_UNSAFE.sub("_", text).strip("_") or "x"
    if slug != re.sub(r"\s+", "_", text.strip()):
        slug += "_" + hashlib.sha256(text.encode()).hexdigest()[:6]
    return slug
