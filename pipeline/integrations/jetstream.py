"""Events to a NATS JetStream stream (nats-py): durable, at-least-once, deduplicated by event id.

The sink's thread only appends to a bounded buffer (``max_buffered`` events; when full the oldest waiting one
goes to ``out_dir/dead_letter/nats.jsonl`` and is counted) and returns. A sender thread runs an asyncio loop
that connects (retrying until the server is there), creates or updates the stream (subjects ``<prefix>.>``,
the duplicate window), then publishes the buffer's head with ``Nats-Msg-Id: <event_id>`` and removes it only
once JetStream's PubAck says it is stored. One event is in flight at a time, so the stream's order is the
sink's order even across outages: a publish whose ack never came is sent again with the same id, and
JetStream stores it once (a PubAck with ``duplicate``). nats-py reconnects by itself; while it is away the
buffer grows and is replayed in order afterwards.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import re
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.js.api import StreamConfig

from .. import metrics as m
from ..config.outputs import NatsConfig
from .dead_letter import DeadLetter, redact_url
from .payload import event_json

CLOSE_GRACE_S = 2.0
PASSWORD_ENV = "FACESTREAM_NATS_PASSWORD"
_TOKEN_UNSAFE = re.compile(r"[\s.*>\x00-\x1f\x7f]+")
_TRANSIENT = (nats.errors.TimeoutError, asyncio.TimeoutError, nats.errors.ConnectionClosedError,
              nats.errors.ConnectionReconnectingError, nats.errors.OutboundBufferLimitError,
              nats.errors.StaleConnectionError, nats.js.errors.ServiceUnavailableError)


def subject_token(value: object) -> str:
    """One subject token from a camera id or kind: whitespace, ``.``, ``*``, ``>`` and control characters
    become ``_`` (``front door.1`` -> ``front_door_1``)."""
    return _TOKEN_UNSAFE.sub("_", str(value)) or "_"


def event_subject(prefix: str, event: dict[str, Any]) -> str:
    return f"{prefix}.{subject_token(event.get('stream_id') or 'unknown')}.{subject_token(event['kind'])}"


@dataclass
class Pending:
    subject: str
    payload: bytes
    event_id: str
    event: dict[str, Any]
    attempts: int = 0


class NatsIntegration:
    """``publish(event)`` never blocks; ``close()`` delivers what it can within CLOSE_GRACE_S."""

    def __init__(self, cfg: NatsConfig, dead_letter_dir: Path, log: logging.Logger, name: str = "nats"):
        self.cfg, self.log, self.name = cfg, log, name
        self.url = ",".join(redact_url(u.strip()) for u in cfg.url.split(","))
        self.dead = DeadLetter(dead_letter_dir / f"{name}.jsonl", name, log)
        self.lock = threading.Lock()
        self.buffer: collections.deque[Pending] = collections.deque()
        self.inflight: Pending | None = None  # buffer[0] while its PubAck is awaited
        self.closing = False
        self.outage_logged = self.full_logged = False
        self.stream_ok = False
        self.loop = asyncio.new_event_loop()
        self.wake = asyncio.Event()
        self.task: asyncio.Task | None = None
        m.INTEGRATION_UP.labels(name).set(0)
        m.INTEGRATION_QUEUED.labels(name).set(0)
        self.thread = threading.Thread(target=self._thread_main, name=f"{name}-sender", daemon=True)
        self.thread.start()

    # --- the sink's side ---------------------------------------------------------------------------------

    def publish(self, event: dict[str, Any]) -> None:
        try:
            item = Pending(event_subject(self.cfg.subject_prefix, event), event_json(event),
                           str(event["event_id"]), event)
        except Exception as exc:  # an event we cannot render must not stop the sink
            m.INTEGRATION_DROPPED.labels(self.name, "bad_event").inc()
            self.log.warning("nats: cannot render event %r: %s", event.get("event_id"), exc)
            return
        overflow: list[Pending] = []
        with self.lock:
            if self.closing:
                overflow.append(item)
            else:
                while len(self.buffer) >= self.cfg.max_buffered:
                    at = 1 if self.buffer and self.buffer[0] is self.inflight else 0
                    if at >= len(self.buffer):  # max_buffered 1 and that one in flight: the new one waits not
                        overflow.append(item)
                        break
                    overflow.append(self.buffer[at])
                    del self.buffer[at]
                else:
                    self.buffer.append(item)
            m.INTEGRATION_QUEUED.labels(self.name).set(len(self.buffer))
            closing, first_full = self.closing, bool(overflow) and not self.full_logged
            self.full_logged = self.full_logged or (bool(overflow) and not closing)
        for lost in overflow:
            self.dead.write(lost.event, "closed" if closing else "queue_full", lost.attempts, "", self.url)
        if first_full and not closing:
            self.log.warning("nats: buffer full (max_buffered=%d) while the server is away; the oldest events go "
                             "to %s (counted in facestream_integration_dropped_total)", self.cfg.max_buffered,
                             self.dead.path)
        self._wake()

    def close(self) -> None:
        with self.lock:
            self.closing = True
        self._wake()
        self.thread.join(CLOSE_GRACE_S)
        if self.thread.is_alive() and self.task is not None:
            self.loop.call_soon_threadsafe(self.task.cancel)
            self.thread.join(2.0)
        with self.lock:
            left = list(self.buffer)
            self.buffer.clear()
        for item in left:
            self.dead.write(item.event, "shutdown", item.attempts, "not acknowledged at shutdown", self.url)
        if left:
            self.log.warning("nats: %d event(s) not acknowledged at shutdown; they are in %s", len(left),
                             self.dead.path)
        m.INTEGRATION_UP.labels(self.name).set(0)
        m.INTEGRATION_QUEUED.labels(self.name).set(0)

    def _wake(self) -> None:
        try:
            self.loop.call_soon_threadsafe(self.wake.set)
        except RuntimeError:
            pass  # the loop is closed: nothing is waiting any more

    # --- the sender thread -------------------------------------------------------------------------------

    def _thread_main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.task = self.loop.create_task(self._main())
        try:
            self.loop.run_until_complete(self.task)
        except asyncio.CancelledError:
            pass
        except Exception:
            self.log.exception("nats: sender stopped")
        finally:
            self.loop.close()

    async def _main(self) -> None:
        nc = await self._connect()
        if nc is None:
            return
        try:
            js = nc.jetstream(timeout=self.cfg.ack_timeout_s)
            self.stream_ok = await self._ensure_stream(js)
            await self._drain(nc, js)
        finally:
            try:
                await asyncio.wait_for(nc.close(), 1.0)
            except Exception:
                pass

    async def _connect(self) -> nats.NATS | None:
        """Connected client, or None when closed before the server was ever reachable."""
        opts: dict[str, Any] = {
            "servers": [u.strip() for u in self.cfg.url.split(",")], "name": f"facestream-{socket.gethostname()}",
            "allow_reconnect": True, "max_reconnect_attempts": -1, "reconnect_time_wait": 0.5,
            "connect_timeout": 2, "error_cb": self._on_error, "disconnected_cb": self._on_disconnected,
            "reconnected_cb": self._on_reconnected,
        }
        if self.cfg.creds_file:
            opts["user_credentials"] = self.cfg.creds_file
        elif self.cfg.user:
            opts["user"], opts["password"] = self.cfg.user, os.environ.get(PASSWORD_ENV, "")
        delay = 0.25
        while True:
            with self.lock:
                if self.closing and not self.buffer:
                    return None
            try:
                nc = await nats.connect(**opts)
            except Exception as exc:  # NoServersError, OSError, auth errors: the server may come (back) later
                if not self.outage_logged:
                    self.log.warning("nats: %s unreachable (%s); retrying, events are buffered (up to %d)",
                                     self.url, exc or type(exc).__name__, self.cfg.max_buffered)
                    self.outage_logged = True
                await self._sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self.outage_logged = False
            m.INTEGRATION_UP.labels(self.name).set(1)
            self.log.info("nats: connected to %s (stream %s, subjects %s.>)", self.url, self.cfg.stream,
                          self.cfg.subject_prefix)
            return nc

    async def _ensure_stream(self, js: Any) -> bool:
        """Create the stream, or add our subjects and duplicate window to the one that is there."""
        c = self.cfg
        subjects = f"{c.subject_prefix}.>"
        want = {"duplicate_window": c.duplicate_window_s, "max_age": c.max_age_days * 86400 or None,
                "max_bytes": c.max_bytes or None, "num_replicas": c.replicas}
        try:
            try:
                info = await js.stream_info(c.stream)
            except nats.js.errors.NotFoundError:
                await js.add_stream(StreamConfig(name=c.stream, subjects=[subjects], storage="file", **want))
                self.log.info("nats: created stream %s (subjects %s)", c.stream, subjects)
                return True
            cur = info.config
            have = {k: getattr(cur, k) for k in want}
            if subjects in (cur.subjects or []) and all(have[k] == v or (v is None and not have[k])
                                                        for k, v in want.items()):
                return True
            new = cur.evolve(subjects=sorted({*(cur.subjects or []), subjects}), **want)
            await js.update_stream(new)
            self.log.info("nats: updated stream %s (subjects %s, duplicate window %gs)", c.stream,
                          ", ".join(new.subjects or []), c.duplicate_window_s)
            return True
        except Exception as exc:
            self.log.error("nats: cannot create or update stream %s: %s", c.stream, exc or type(exc).__name__)
            return False

    async def _drain(self, nc: nats.NATS, js: Any) -> None:
        while True:
            self.wake.clear()  # before looking, so an event queued meanwhile wakes the sleep below
            with self.lock:
                head = self.buffer[0] if self.buffer else None
                if head is None and self.closing:
                    return
                self.inflight = head
            if head is None or not nc.is_connected:
                await self._sleep(0.5)
                continue
            try:
                ack = await js.publish(head.subject, head.payload, timeout=self.cfg.ack_timeout_s,
                                       headers={"Nats-Msg-Id": head.event_id})
            except nats.js.errors.NoStreamResponseError:  # no stream takes the subject (deleted, new server)
                head.attempts += 1
                m.INTEGRATION_RETRIES.labels(self.name).inc()
                self.stream_ok = await self._ensure_stream(js)
                await self._sleep(0 if self.stream_ok else 1.0)
                continue
            except _TRANSIENT:
                head.attempts += 1
                m.INTEGRATION_RETRIES.labels(self.name).inc()
                await asyncio.sleep(0.05)
                continue
            except Exception as exc:  # a permanent rejection (APIError): give this event up, keep the order
                head.attempts += 1
                self._remove(head)
                self.dead.write(head.event, "error", head.attempts, str(exc) or type(exc).__name__, self.url)
                self.log.warning("nats: %s rejected event %s: %s", self.url, head.event_id, exc)
                continue
            self._remove(head)
            m.INTEGRATION_SENT.labels(self.name).inc()
            if ack.duplicate:
                self.log.debug("nats: event %s was already stored (seq %d)", head.event_id, ack.seq)

    def _remove(self, head: Pending) -> None:
        with self.lock:
            if self.buffer and self.buffer[0] is head:
                self.buffer.popleft()
            self.inflight = None
            m.INTEGRATION_QUEUED.labels(self.name).set(len(self.buffer))

    async def _sleep(self, seconds: float) -> None:
        """Sleep until woken (a new event, close, a reconnect) or ``seconds`` pass."""
        try:
            await asyncio.wait_for(self.wake.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    # --- nats-py callbacks (on the sender's loop) --------------------------------------------------------

    async def _on_error(self, exc: Exception) -> None:
        self.log.debug("nats: %s", exc)

    async def _on_disconnected(self) -> None:
        m.INTEGRATION_UP.labels(self.name).set(0)
        with self.lock:
            closing = self.closing
        if not closing and not self.outage_logged:
            self.log.warning("nats: lost %s; reconnecting, events are buffered (up to %d)", self.url,
                             self.cfg.max_buffered)
            self.outage_logged = True

    async def _on_reconnected(self) -> None:
        m.INTEGRATION_UP.labels(self.name).set(1)
        with self.lock:
            queued = len(self.buffer)
        self.outage_logged = self.full_logged = False
        self.log.info("nats: reconnected to %s%s", self.url, f"; replaying {queued} buffered event(s)" if queued else "")
        self.wake.set()
