"""What every stage process shares: sockets, the receive loop, heartbeats, drop accounting, shutdown.

A stage reads messages from its bound PULL socket, keeps a bounded queue of items, hands batches to
:meth:`Stage.process`, and sends what that returns downstream. No stage ever holds an unbounded backlog:
items of live streams beyond ``LIVE_QUEUE`` are dropped oldest-first (counted as ``stale``); lossless
items stop the receive loop when the queue is full, so ZeroMQ's high-water marks push back on the sender.

Every drop is counted in ``facestream_frames_dropped_total`` and also carried downstream in the next
item of the same stream (``Item.drops``) so the sink can account for every frame: result, dropped
(by which stage and why), or lost in flight.
"""

from __future__ import annotations

import collections
import logging
import os
import signal
import threading
import time
from collections.abc import Iterable

import zmq

from .. import metrics as m
from ..codec import PayloadDecoder, PayloadEncoder
from ..config import STAGES, PipelineConfig
from ..shm import ShmOverrun
from ..transport import open_receiver, open_sender
from ..wire import MSG_BATCH, MSG_EOS, MSG_HEARTBEAT, Item, Message, WireError, decode, encode
from .heartbeat import HeartbeatSender

LIVE_QUEUE = 2
POLICY_KEY = "policy"
LOSSLESS = "lossless"


class RateLimitedLog:
    """Logs the first occurrence of a key, then at most once per ``every_s`` with a count."""

    def __init__(self, logger: logging.Logger, every_s: float = 10.0):
        self.log, self.every_s = logger, every_s
        self.last: dict[str, float] = {}
        self.suppressed: collections.Counter[str] = collections.Counter()

    def warning(self, key: str, msg: str, *args: object) -> None:
        now = time.monotonic()
        if now - self.last.get(key, -1e9) >= self.every_s:
            extra = f" ({self.suppressed[key]} similar suppressed)" if self.suppressed[key] else ""
            self.log.warning(msg + extra, *args)
            self.last[key] = now
            self.suppressed[key] = 0
        else:
            self.suppressed[key] += 1


def is_lossless(item: Item) -> bool:
    return item.meta.get(POLICY_KEY) == LOSSLESS


class Stage:
    """Base of the preprocess, inference and sink stages (capture has no input and overrides :meth:`run`)."""

    name = "stage"
    batch_size = 1
    batch_timeout_s = 0.0

    def __init__(self, cfg: PipelineConfig):
        self.cfg = cfg
        self.log = logging.getLogger(f"facestream.{self.name}")
        self.rlog = RateLimitedLog(self.log)
        self.stop_event = threading.Event()
        self.ctx = zmq.Context.instance()
        self.streams = [s.id for s in cfg.sources]
        self.downstream = self._downstream()
        self.queue: collections.deque[Item] = collections.deque()
        self.pending_drops: dict[str, collections.Counter[tuple[str, str]]] = collections.defaultdict(collections.Counter)
        self.eos_done: dict[str, Item] = {}
        self.peers: dict[str, float] = {}
        self.peer_down: set[str] = set()
        self.decoder = PayloadDecoder()
        self.encoder: PayloadEncoder | None = None
        self.receiver: zmq.Socket | None = None
        self.sender: zmq.Socket | None = None
        self.monitor: zmq.Socket | None = None
        self.last_hb = 0.0
        self.heartbeat: HeartbeatSender | None = None
        self.finished_at: float | None = None
        # Under `facestream run` the supervisor ends the run when the sink is done; a standalone stage
        # (`facestream stage`) exits by itself eos_linger_s after its streams ended.
        self.supervised = os.environ.get("FACESTREAM_SUPERVISED") == "1"

    def _downstream(self) -> str | None:
        i = STAGES.index(self.name) if self.name in STAGES else -1
        return STAGES[i + 1] if 0 <= i < len(STAGES) - 1 else None

    # --- lifecycle ---------------------------------------------------------------------------------------

    def install_signals(self) -> None:
        def handler(signum: int, _frame: object) -> None:
            self.log.info("%s: %s received, draining", self.name, signal.Signals(signum).name)
            self.stop_event.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def open(self) -> None:
        if self.name != "capture":
            self.receiver = open_receiver(self.ctx, self.cfg, self.name)
        if self.downstream:
            self.sender = open_sender(self.ctx, self.cfg, self.downstream)
            self.monitor = self.sender.get_monitor_socket(zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED)
            hop = self.cfg.hop(self.downstream)
            self.encoder = PayloadEncoder(self.cfg.hop_encoding(self.downstream), hop.jpeg_quality, self.name)
            m.PEER_UP.labels(self.name, self.downstream).set(0)
            self.heartbeat = HeartbeatSender(self.ctx, self.cfg, self.name, self.downstream)
            self.heartbeat.start()

    def close(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.stop()
        for sock in (self.monitor, self.receiver, self.sender):
            if sock is not None:
                sock.close()
        if self.encoder:
            self.encoder.close()
        self.decoder.close()

    def setup(self) -> None:
        """Load models etc. Called after sockets are open, before the loop."""

    def teardown(self) -> None:
        """Flush files etc. Called after the loop."""

    def run(self) -> int:
        self.install_signals()
        self.open()
        try:
            self.setup()
            m.STAGE_UP.labels(self.name).set(1)
            self.log.info("%s: running (input %s%s)", self.name,
                          self.cfg.bind_endpoint(self.name) if self.receiver else "-",
                          f", output {self.cfg.connect_endpoint(self.downstream)}" if self.downstream else "")
            self.loop()
            self.drain()
        finally:
            m.STAGE_UP.labels(self.name).set(0)
            self.teardown()
            self.close()
        return 0

    # --- the loop ----------------------------------------------------------------------------------------

    def queue_full(self) -> bool:
        return len(self.queue) >= max(2 * self.batch_size, 4)

    def loop(self) -> None:
        assert self.receiver is not None
        poller = zmq.Poller()
        poller.register(self.receiver, zmq.POLLIN)
        if self.monitor is not None:
            poller.register(self.monitor, zmq.POLLIN)
        oldest_wait = None
        while not self.stop_event.is_set():
            timeout_ms = 200
            if self.queue:
                timeout_ms = 0 if len(self.queue) >= self.batch_size else max(1, int(self.batch_timeout_s * 1000))
            if self.queue_full():
                timeout_ms = 0
            events = dict(poller.poll(timeout_ms))
            if self.monitor is not None and self.monitor in events:
                self.on_monitor_event()
            if self.receiver in events:
                for _ in range(64):
                    if self.queue_full() and any(is_lossless(it) for it in self.queue):
                        break
                    try:
                        parts = self.receiver.recv_multipart(zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        break
                    self.on_parts(parts)
            if self.queue and oldest_wait is None:
                oldest_wait = time.monotonic()
            if self.queue and (
                len(self.queue) >= self.batch_size
                or oldest_wait is not None and time.monotonic() - oldest_wait >= self.batch_timeout_s
            ):
                self.process_queue()
                oldest_wait = time.monotonic() if self.queue else None
            m.QUEUE_DEPTH.labels(self.name).set(len(self.queue))
            self.housekeeping()
            if self.finished():
                break

    def process_queue(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.beat()
        batch = [self.queue.popleft() for _ in range(min(self.batch_size, len(self.queue)))]
        t0 = time.perf_counter()
        try:
            self.process(batch)
        finally:
            m.PROCESSING_SECONDS.labels(self.name).observe(time.perf_counter() - t0)

    def drain(self) -> None:
        """After a stop request: process what is already queued, within the grace period."""
        deadline = time.monotonic() + self.cfg.supervisor.stop_timeout_s * 0.6
        while self.queue and time.monotonic() < deadline:
            self.process_queue()
        for it in self.queue:
            self.drop(it, "shutdown")
        self.queue.clear()

    def finished(self) -> bool:
        """True when every stream has ended and the linger period is over."""
        if not self.streams or len(self.eos_done) < len(self.streams) or self.queue:
            return False
        if self.finished_at is None:
            self.finished_at = time.monotonic()
            self.log.info("%s: every stream ended", self.name)
        if self.supervised and self.name != "sink":
            return False  # under the supervisor: keep re-sending end of stream until the sink has it
        return time.monotonic() - self.finished_at >= self.cfg.supervisor.eos_linger_s

    # --- input -------------------------------------------------------------------------------------------

    def on_parts(self, parts: list) -> None:
        try:
            msg = decode(parts, self.cfg.transport.max_payload_mb << 20)
        except WireError as exc:
            m.MESSAGES_REJECTED.labels(self.name, exc.reason).inc()
            self.rlog.warning("reject:" + exc.reason, "%s: rejected a message: %s", self.name, exc)
            return
        except Exception as exc:  # noqa: BLE001 - a hostile message must never stop the stage
            m.MESSAGES_REJECTED.labels(self.name, "internal").inc()
            self.rlog.warning("reject:internal", "%s: rejected a message (%s: %s)", self.name, type(exc).__name__, exc)
            return
        self.heard(msg.sender or "upstream")
        if msg.type == MSG_HEARTBEAT:
            return
        if msg.type == MSG_EOS:
            self.on_eos(msg.items[0])
            return
        now = time.time_ns()
        for it in msg.items:
            if it.stream not in self.streams:
                m.MESSAGES_REJECTED.labels(self.name, "unknown_stream").inc()
                self.rlog.warning("unknown_stream", "%s: rejected an item of unknown stream %r", self.name, it.stream)
                continue
            m.FRAMES_IN.labels(self.name, it.stream).inc()
            it.stages.append([self.name, now, 0])
            try:
                it.data = self.decoder.array(it)
            except ShmOverrun:
                self.drop(it, "shm_overrun")
                continue
            except WireError as exc:
                m.MESSAGES_REJECTED.labels(self.name, exc.reason).inc()
                self.rlog.warning("reject:" + exc.reason, "%s: rejected an item: %s", self.name, exc)
                self.drop(it, "rejected")
                continue
            self.enqueue(it)

    def enqueue(self, it: Item) -> None:
        self.queue.append(it)
        if not is_lossless(it):
            live = [x for x in self.queue if x.stream == it.stream]
            while len(live) > LIVE_QUEUE:
                old = live.pop(0)
                self.queue.remove(old)
                self.drop(old, "stale")

    def flush_stream(self, stream: str) -> None:
        """Process every queued item of ``stream`` (before its end of stream goes on: order is kept)."""
        while any(x.stream == stream for x in self.queue):
            self.process_queue()

    def on_eos(self, item: Item) -> None:
        """End of a stream: forward it once everything before it has been processed.

        Upstream re-sends end of stream every heartbeat until it exits, so the same one can arrive again
        after downstream has finished and gone: only the first is waited for like a lossless frame, a
        repeat is passed on if the hop takes it (waiting for a peer that has exited would never end).
        """
        first = item.stream not in self.eos_done
        self.flush_stream(item.stream)
        self.merge_drops(item)
        if first:
            self.stream_ended(item)
            self.eos_done[item.stream] = item
        self.forward_eos(self.eos_done[item.stream], wait=first)

    def stream_ended(self, item: Item) -> None:
        """Hook: a stream's first end of stream, after its frames were processed, before it goes on."""

    def forward_eos(self, item: Item, wait: bool = True) -> None:
        """Send end-of-stream on; the first time it waits for the hop like a lossless frame."""
        if self.sender is None:
            return
        self.attach_drops(item)
        if self.send(Message(MSG_EOS, [item], self.name, time.time_ns()), lossless=wait):
            item.drops = []  # delivered: a re-send must not count them again
        else:
            self.merge_drops(item)  # not delivered: they go with the next send

    # --- heartbeats and peers ------------------------------------------------------------------------------

    def heard(self, peer: str) -> None:
        self.peers[peer] = time.monotonic()
        if peer in self.peer_down:
            self.peer_down.discard(peer)
            self.log.info("%s: peer %s is back", self.name, peer)
        m.PEER_UP.labels(self.name, peer).set(1)

    def on_monitor_event(self) -> None:
        from zmq.utils.monitor import recv_monitor_message

        assert self.monitor is not None
        while True:
            try:
                ev = recv_monitor_message(self.monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            if ev["event"] == zmq.EVENT_CONNECTED:
                self.log.info("%s: connected to %s", self.name, self.downstream)
                m.PEER_UP.labels(self.name, self.downstream).set(1)
            elif ev["event"] == zmq.EVENT_DISCONNECTED:
                if self.finished_at is not None:  # the run is ending: expected
                    self.log.info("%s: downstream %s has finished", self.name, self.downstream)
                else:
                    self.log.warning("%s: downstream %s went away", self.name, self.downstream)
                m.PEER_UP.labels(self.name, self.downstream).set(0)
                m.HEARTBEATS_MISSED.labels(self.name, self.downstream).inc()

    def housekeeping(self) -> None:
        now = time.monotonic()
        for peer, last in self.peers.items():
            if peer not in self.peer_down and now - last > self.cfg.transport.peer_timeout_s:
                self.peer_down.add(peer)
                m.PEER_UP.labels(self.name, peer).set(0)
                m.HEARTBEATS_MISSED.labels(self.name, peer).inc()
                self.log.warning("%s: peer %s silent for %.1f s", self.name, peer, now - last)
        if self.heartbeat is not None:
            self.heartbeat.beat()
        if self.sender is not None and now - self.last_hb >= self.cfg.transport.heartbeat_s:
            self.last_hb = now
            if self.finished_at is not None:  # re-send end-of-stream in case a restarted peer missed it
                for it in self.eos_done.values():
                    self.forward_eos(it, wait=False)

    # --- output ------------------------------------------------------------------------------------------

    def drop(self, item: Item, reason: str) -> None:
        m.FRAMES_DROPPED.labels(self.name, item.stream, reason).inc()
        self.merge_drops(item)
        self.pending_drops[item.stream][(self.name, reason)] += 1

    def merge_drops(self, item: Item) -> None:
        for stage, reason, count in item.drops:
            self.pending_drops[item.stream][(str(stage), str(reason))] += int(count)
        item.drops = []

    def attach_drops(self, item: Item) -> None:
        pend = self.pending_drops.pop(item.stream, None)
        if pend:
            item.drops = item.drops + [[s, r, c] for (s, r), c in pend.items()]

    def send(self, msg: Message, lossless: bool) -> bool:
        """Send downstream. Lossless waits (while not stopping); otherwise a full hop drops the message."""
        assert self.sender is not None
        parts = encode(msg)
        if lossless:
            while True:
                try:
                    self.sender.send_multipart(parts, zmq.NOBLOCK, copy=False)
                    return True
                except zmq.Again:
                    if self.stop_event.is_set():
                        break
                    if self.sender.poll(100, zmq.POLLOUT) == 0:
                        self.housekeeping_while_blocked()
        else:
            try:
                self.sender.send_multipart(parts, zmq.NOBLOCK, copy=False)
                return True
            except zmq.Again:
                pass
        return False

    def housekeeping_while_blocked(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.beat()  # waiting on a full hop is progress, not a hang
        if self.monitor is not None and self.monitor.poll(0):
            self.on_monitor_event()

    def send_items(self, mtype: str, items: Iterable[Item]) -> None:
        """Stamp, attach drops, send; an item that cannot be sent is dropped and counted."""
        items = list(items)
        if not items:
            return
        now = time.time_ns()
        for it in items:
            if it.stages and it.stages[-1][0] == self.name:
                it.stages[-1][2] = now
            self.attach_drops(it)
            m.CAPTURE_TO_STAGE_SECONDS.labels(self.name).observe(max(0.0, (now - it.wall_ns) / 1e9))
        lossless = any(is_lossless(it) for it in items)
        msgs = [Message(mtype, items, self.name, now)] if mtype == MSG_BATCH else [
            Message(mtype, [it], self.name, now) for it in items]
        for msg in msgs:
            if self.send(msg, lossless):
                for it in msg.items:
                    m.FRAMES_OUT.labels(self.name, it.stream).inc()
            else:
                for it in msg.items:
                    self.drop(it, "backpressure" if not self.stop_event.is_set() else "shutdown")

    def process(self, items: list[Item]) -> None:
        raise NotImplementedError
