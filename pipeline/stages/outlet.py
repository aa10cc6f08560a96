"""A stage's output: the PUSH socket to the next stage, the payload encoder, heartbeats and backpressure.

Lossless items (``policy: lossless``) wait while the hop is full, so ZeroMQ's high-water marks push back on
the sender; latest items never wait: a full hop drops them (``backpressure``). Every drop goes to the
stage's :class:`DropBooks`. :meth:`Outlet.deliver` is the only place that touches the socket, so a stage can
be driven without ZeroMQ by an outlet that delivers elsewhere (tests/pipeline/stages/memory_outlet.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import zmq

from .. import metrics as m
from ..codec import PayloadEncoder
from ..config import PipelineConfig
from ..transport import open_sender
from ..wire import MSG_BATCH, Item, Message, encode
from .books import DropBooks
from .heartbeat import HeartbeatSender

DRAIN_LINGER_MS = 60_000  # longest a finished stage waits at exit for a connected reader to take its queue


class Outlet:
    def __init__(self, stage: str, downstream: str, cfg: PipelineConfig, log: logging.Logger):
        self.stage, self.downstream, self.cfg, self.log = stage, downstream, cfg, log
        self.books = DropBooks(stage)
        self.stop_event = threading.Event()
        self.ending: Callable[[], bool] = lambda: False
        self.encoder: PayloadEncoder | None = None
        self.socket: zmq.Socket | None = None
        self.monitor: zmq.Socket | None = None
        self.heartbeat: HeartbeatSender | None = None
        self.connected = False  # the downstream's connection, from the socket monitor
        # Live frames in flight towards the reader at most (config.live_credit): enough that it always has
        # its next one ready, none older (latency) queued behind it.
        self.live_credit = cfg.live_credit(downstream)

    def bind(self, books: DropBooks, stop_event: threading.Event, ending: Callable[[], bool]) -> None:
        """Serve a stage: its drop books, its stop flag (lossless sends give up when set), and whether its
        streams have all ended (a downstream leaving is then expected, not a fault)."""
        self.books, self.stop_event, self.ending = books, stop_event, ending

    def open(self, ctx: zmq.Context) -> None:
        def watch(sock: zmq.Socket) -> None:  # before connecting: a downstream already there connects at once
            self.monitor = sock.get_monitor_socket(zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED)

        self.socket = open_sender(ctx, self.cfg, self.downstream, before_connect=watch)
        self.open_encoder(self.cfg.hop_encoding(self.downstream))
        m.PEER_UP.labels(self.stage, self.downstream).set(0)
        self.heartbeat = HeartbeatSender(ctx, self.cfg, self.stage, self.downstream)
        self.heartbeat.start()

    def open_encoder(self, encoding: str) -> None:
        self.encoder = PayloadEncoder(encoding, self.cfg.hop(self.downstream).jpeg_quality, self.stage)
        # A lossless shared-memory hop waits for its reader for as long as the reader is connected.
        self.encoder.set_reader_hooks(self.reader_gone, self.beat)

    def has_credit(self) -> bool:
        """Whether a *live* frame should go now: the reader has fewer than ``live_credit`` frames not yet
        taken. A live frame held back waits in the sender's latest-frame queue, where a newer one replaces it
        for free, instead of being copied into a ring slot it would be overrun in. Unknown (not shared memory):
        always."""
        return self.live_room() > 0

    def live_room(self) -> int:
        """Live frames that may go now: ``live_credit`` less the reader's backlog (all of it where the
        encoding cannot tell the backlog)."""
        backlog = self.encoder.backlog() if self.encoder is not None else None
        return self.live_credit - (backlog or 0)

    def reader_gone(self) -> bool:
        """The downstream is not connected (it died or never came): nobody will free a ring slot."""
        self.poll_monitor()
        return not self.connected

    def close(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.stop()
        if self.socket is not None:
            self.poll_monitor()
            # A stage that finished its streams (not told to stop) exits only once what it queued has reached a
            # connected reader: over tcp the socket and kernel buffers hold many frames of a lossless file, and a
            # short linger would throw them away while a slow reader is still on its way to them.
            finishing = not self.stop_event.is_set() and self.connected
            self.socket.setsockopt(zmq.LINGER, DRAIN_LINGER_MS if finishing else 500)
        for sock in (self.monitor, self.socket):
            if sock is not None:
                sock.close()
        if self.encoder:
            self.encoder.close()

    def attach(self, item: Item, array: np.ndarray | None) -> None:
        """Put ``array`` (or no pixels) into ``item`` in this hop's payload encoding."""
        assert self.encoder is not None, "outlet not open"
        self.encoder.attach(item, array, item.meta.lossless, self.stop_event.is_set)

    def beat(self) -> None:
        """The stage's loop made progress: its heartbeat thread may vouch for it."""
        if self.heartbeat is not None:
            self.heartbeat.beat()

    # --- sending -----------------------------------------------------------------------------------------

    def deliver(self, parts: list[Any], lossless: bool) -> bool:
        """Put encoded parts on the socket. Lossless waits (while not stopping); otherwise a full hop fails."""
        assert self.socket is not None, "outlet not open"
        while True:
            try:
                self.socket.send_multipart(parts, zmq.NOBLOCK, copy=False)
                return True
            except zmq.Again:
                if not lossless or self.stop_event.is_set():
                    return False
                if self.socket.poll(100, zmq.POLLOUT) == 0:
                    self.beat()  # waiting on a full hop is progress, not a hang
                    self.poll_monitor()

    def send(self, msg: Message, lossless: bool) -> bool:
        msg.run = self.cfg.transport.run_id  # the receiver takes only messages of its own run
        return self.deliver(encode(msg), lossless)

    def send_items(self, mtype: str, items: Iterable[Item]) -> None:
        """Stamp, attach drops, send; an item that cannot be sent is dropped and counted."""
        items = list(items)
        if not items:
            return
        now = time.time_ns()
        for it in items:
            if it.stages and it.stages[-1][0] == self.stage:
                it.stages[-1][2] = now
            self.books.attach(it)
            m.CAPTURE_TO_STAGE_SECONDS.labels(self.stage).observe(max(0.0, (now - it.wall_ns) / 1e9))
        lossless = any(it.meta.lossless for it in items)
        msgs = [Message(mtype, items, self.stage, now)] if mtype == MSG_BATCH else [
            Message(mtype, [it], self.stage, now) for it in items]
        for msg in msgs:
            if self.send(msg, lossless):
                for it in msg.items:
                    m.FRAMES_OUT.labels(self.stage, it.stream).inc()
            else:
                for it in msg.items:
                    if self.encoder is not None:
                        self.encoder.unsent(it)  # its ring slot would otherwise count as unread for ever
                    self.books.drop(it, "backpressure" if not self.stop_event.is_set() else "shutdown")

    # --- the downstream peer -----------------------------------------------------------------------------

    def poll_monitor(self) -> None:
        """Handle the socket's connect/disconnect events, if any are waiting."""
        if self.monitor is None or not self.monitor.poll(0):
            return
        from zmq.utils.monitor import recv_monitor_message

        while True:
            try:
                ev = recv_monitor_message(self.monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            if ev["event"] == zmq.EVENT_CONNECTED:
                self.log.info("%s: connected to %s", self.stage, self.downstream)
                self.connected = True
                m.PEER_UP.labels(self.stage, self.downstream).set(1)
            elif ev["event"] == zmq.EVENT_DISCONNECTED:
                if self.ending():  # the run is ending: expected
                    self.log.info("%s: downstream %s has finished", self.stage, self.downstream)
                else:
                    self.log.warning("%s: downstream %s went away", self.stage, self.downstream)
                self.connected = False
                if self.encoder is not None:
                    self.encoder.reader_left()  # its unread frames died with it: a lossless wait must not hang
                m.PEER_UP.labels(self.stage, self.downstream).set(0)
                m.HEARTBEATS_MISSED.labels(self.stage, self.downstream).inc()
