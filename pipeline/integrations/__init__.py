"""Where the sink hands each new event besides its own files: MQTT and webhooks (each optional).

An integration never blocks the sink: ``publish`` queues (bounded) and returns; delivery, retries and
reconnects happen on the integration's own thread. ``close`` flushes what it can within a short grace period.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from ..config import PipelineConfig


class Integration(Protocol):
    def publish(self, event: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class EventFanout:
    """Every configured integration; the sink calls :meth:`publish` once per new event (ids are deduplicated)."""

    def __init__(self, integrations: list[Integration]):
        self.integrations = integrations

    def publish(self, event: dict[str, Any]) -> None:
        for integration in self.integrations:
            integration.publish(event)

    def close(self) -> None:
        for integration in self.integrations:
            integration.close()


def build_fanout(cfg: PipelineConfig, log: logging.Logger) -> EventFanout:
    """The integrations ``cfg.integrations`` turns on (none by default)."""
    integrations: list[Integration] = []
    return EventFanout(integrations)
