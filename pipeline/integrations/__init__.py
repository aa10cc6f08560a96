"""Where the sink hands each new event besides its own files: MQTT, NATS JetStream and webhooks (each optional).

An integration never blocks the sink: ``publish`` queues (bounded) and returns; delivery, retries and
reconnects happen on the integration's own thread. ``close`` flushes what it can within a short grace period.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Protocol

from ..config import PipelineConfig

_log = logging.getLogger(__name__)


class Integration(Protocol):
    def publish(self, event: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class EventFanout:
    """Every configured integration; the sink calls :meth:`publish` once per new event (ids are deduplicated)."""

    def __init__(self, integrations: list[Integration]):
        self.integrations = integrations

    def publish(self, event: dict[str, Any]) -> None:
        for integration in self.integrations:
            try:
                integration.publish(event)
            except Exception:  # one broken integration must not stop the sink or the others
                _log.exception("integration %s failed to take event %s", type(integration).__name__,
                              event.get("event_id"))

    def close(self) -> None:
        """Close all at once, so their grace periods overlap instead of adding up."""
        threads = [threading.Thread(target=_close, args=(i,), daemon=True) for i in self.integrations]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10.0)


def _close(integration: Integration) -> None:
    try:
        integration.close()
    except Exception:
        _log.exception("integration %s failed to close", type(integration).__name__)


def build_fanout(cfg: PipelineConfig, log: logging.Logger) -> EventFanout:
    """The integrations ``cfg.integrations`` turns on (none by default)."""
    integrations: list[Integration] = []
    ic = cfg.integrations
    if ic.mqtt.enabled:
        from .mqtt import MqttIntegration

        integrations.append(MqttIntegration(ic.mqtt, [s.id for s in cfg.sources], log))
    if ic.nats.enabled:
        from .jetstream import NatsIntegration

        integrations.append(NatsIntegration(ic.nats, Path(cfg.sink.out_dir) / "dead_letter", log))
    if ic.webhooks:
        from .webhooks import WebhookIntegration

        dead = Path(cfg.sink.out_dir) / "dead_letter"
        integrations += [WebhookIntegration(w, n, dead, log) for n, w in enumerate(ic.webhooks, 1)]
    return EventFanout(integrations)
