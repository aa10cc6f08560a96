"""Events as signed JSON POSTs to a webhook (urllib; docs/integrations.md has the headers and how to verify).

One worker thread per webhook delivers in order from a bounded queue. Connection errors, 5xx, 408 and 429
are retried with exponential backoff (``backoff_s`` doubling up to ``backoff_max_s``, plus up to 10 %
jitter; a ``Retry-After`` in seconds is honoured up to ``backoff_max_s``); any other status is a permanent
failure. An event that is given up on (attempts exhausted, rejected, pushed out of a full queue, or still
waiting at shutdown) goes to ``out_dir/dead_letter/webhook-<n>.jsonl``: nothing is lost without a trace.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import http.client
import logging
import os
import random
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from facestream import __version__

from .. import metrics as m
from ..config.outputs import WebhookConfig
from .dead_letter import DeadLetter, redact_url
from .payload import event_json

CLOSE_GRACE_S = 2.0
RETRY_STATUS = {408, 429}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args: Any, **_kw: Any) -> None:
        return None  # a redirected POST would lose its body: a 3xx is a permanent failure


class Delivery:
    """One event on its way: the exact body that is signed and sent on every attempt."""

    def __init__(self, event: dict[str, Any]):
        self.event = event
        self.body = event_json(event)
        self.attempts = 0
        self.error = ""


class WebhookIntegration:
    def __init__(self, cfg: WebhookConfig, index: int, dead_letter_dir: Path, log: logging.Logger):
        self.cfg, self.log = cfg, log
        self.name = f"webhook-{index}"
        self.url = redact_url(cfg.url)
        self.kinds = set(cfg.kinds)
        secret = os.environ.get(cfg.secret_env, "")
        self.secret = secret.encode() if secret else None
        if self.secret is None:
            log.warning("%s: $%s is not set; POSTs to %s carry no X-Facestream-Signature", self.name,
                        cfg.secret_env, self.url)
        self.dead = DeadLetter(dead_letter_dir / f"{self.name}.jsonl", self.name, log)
        self.opener = urllib.request.build_opener(_NoRedirect())
        self.cond = threading.Condition()
        self.queue: collections.deque[Delivery] = collections.deque()
        self.current: Delivery | None = None
        self.closing = False
        self.deadline = 0.0  # of the close grace, once closing
        self.abort = threading.Event()  # the close grace is over: stop retrying
        self.full_logged = False
        m.INTEGRATION_UP.labels(self.name).set(0)
        m.INTEGRATION_QUEUED.labels(self.name).set(0)
        self.worker = threading.Thread(target=self._run, name=self.name, daemon=True)
        self.worker.start()

    # --- the sink's side ---------------------------------------------------------------------------------

    def publish(self, event: dict[str, Any]) -> None:
        if self.kinds and event.get("kind") not in self.kinds:
            return
        try:
            delivery = Delivery(event)
        except (TypeError, ValueError) as exc:
            self.dead.write(event, "bad_event", 0, str(exc), self.url)
            return
        pushed_out = None
        with self.cond:
            if self.closing:
                pushed_out = delivery
            else:
                if len(self.queue) >= self.cfg.max_queued:
                    pushed_out = self.queue.popleft()
                self.queue.append(delivery)
                m.INTEGRATION_QUEUED.labels(self.name).set(len(self.queue))
                self.cond.notify_all()
        if pushed_out is not None:
            if not self.full_logged:
                self.log.warning("%s: %s", self.name, "closing; event written to the dead-letter file"
                                 if self.closing else f"queue full (max_queued={self.cfg.max_queued}); "
                                 "the oldest events go to the dead-letter file")
                self.full_logged = True
            self.dead.write(pushed_out.event, "closed" if pushed_out is delivery else "queue_full",
                            pushed_out.attempts, pushed_out.error, self.url)

    def close(self) -> None:
        """Deliver what the grace period allows, then dead-letter the rest."""
        deadline = self.deadline = time.monotonic() + CLOSE_GRACE_S
        with self.cond:
            self.closing = True
            self.cond.notify_all()
        self.worker.join(max(0.0, deadline - time.monotonic()))
        self.abort.set()
        self.worker.join(0.2)
        with self.cond:
            left = ([self.current] if self.current is not None else []) + list(self.queue)
            self.current = None
            self.queue.clear()
            m.INTEGRATION_QUEUED.labels(self.name).set(0)
        for d in left:
            self.dead.write(d.event, "shutdown", d.attempts, d.error, self.url)
        if left:
            self.log.warning("%s: %d event(s) not delivered at shutdown, written to %s", self.name, len(left),
                             self.dead.path)

    # --- the worker --------------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self.cond:
                while not self.queue and not self.closing:
                    self.cond.wait()
                if not self.queue or self.abort.is_set():
                    return
                d = self.current = self.queue.popleft()
                m.INTEGRATION_QUEUED.labels(self.name).set(len(self.queue))
            outcome = self._deliver(d)
            with self.cond:
                mine = self.current is d  # else close() took it (and dead-lettered it) meanwhile
                self.current = None
            if not mine:
                return
            if outcome != "sent":
                self.dead.write(d.event, outcome, d.attempts, d.error, self.url)
            if self.abort.is_set():
                return

    def _deliver(self, d: Delivery) -> str:
        """POST until it is accepted: "sent", or why not ("rejected", "max_attempts", "shutdown")."""
        while True:
            d.attempts += 1
            retry_after = None
            try:
                status, retry_after = self._post(d)
            except urllib.error.HTTPError as exc:  # only for codes urllib does not treat as success
                status, d.error = exc.code, f"HTTP {exc.code} {exc.reason}"
                retry_after = exc.headers.get("Retry-After") if exc.headers else None
            except (OSError, http.client.HTTPException) as exc:  # refused, reset, timeout, bad response
                status, d.error = 0, f"{type(exc).__name__}: {exc}"
            if 200 <= status < 300:
                m.INTEGRATION_SENT.labels(self.name).inc()
                m.INTEGRATION_UP.labels(self.name).set(1)
                return "sent"
            if status and not d.error:
                d.error = f"HTTP {status}"
            m.INTEGRATION_UP.labels(self.name).set(0)
            if status and status < 500 and status not in RETRY_STATUS:
                self.log.warning("%s: %s rejected event %s (%s); written to the dead-letter file", self.name,
                                 self.url, d.event.get("event_id"), d.error)
                return "rejected"
            if d.attempts >= self.cfg.max_attempts:
                self.log.warning("%s: giving up on event %s after %d attempts (%s); written to the dead-letter "
                                 "file", self.name, d.event.get("event_id"), d.attempts, d.error)
                return "max_attempts"
            m.INTEGRATION_RETRIES.labels(self.name).inc()
            if self.abort.wait(self._delay(d.attempts, retry_after)):
                return "shutdown"

    def _delay(self, attempts: int, retry_after: str | None) -> float:
        delay = self.cfg.backoff_s * 2 ** (attempts - 1) * (1 + 0.1 * random.random())
        try:
            delay = max(delay, float(retry_after)) if retry_after else delay
        except ValueError:
            pass  # an HTTP-date Retry-After: our own backoff
        return min(delay, self.cfg.backoff_max_s)

    def _post(self, d: Delivery) -> tuple[int, str | None]:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"facestream/{__version__}",
            "X-Facestream-Event": str(d.event.get("kind", "")),
            "X-Facestream-Delivery": str(d.event.get("event_id", "")),
            "X-Facestream-Timestamp": str(int(time.time())),
            "X-Facestream-Attempt": str(d.attempts),
        }
        if self.secret is not None:
            headers["X-Facestream-Signature"] = "sha256=" + hmac.new(self.secret, d.body, hashlib.sha256).hexdigest()
        timeout = self.cfg.timeout_s
        if self.closing:  # within the close grace: no attempt may outlast it by much
            timeout = min(timeout, max(0.2, self.deadline - time.monotonic()))
        req = urllib.request.Request(self.cfg.url, data=d.body, headers=headers, method="POST")
        with self.opener.open(req, timeout=timeout) as resp:
            resp.read(65536)
            return resp.status, resp.headers.get("Retry-After")
