"""What every stage process shares: lifecycle, the receive loop, batching, end of stream, shutdown.

A stage reads messages through its :class:`Inlet` (socket, decoder, rejections, upstream liveness), keeps a
bounded queue of items, hands batches to :meth:`Stage.process`, and sends results through its
:class:`Outlet` (socket, encoder, heartbeats, backpressure); :class:`DropBooks` counts what it drops. No
stage ever holds an unbounded backlog: items of live streams beyond ``LIVE_QUEUE`` are dropped oldest-first
(``stale``); lossless items stop the receive loop when the queue is full, so ZeroMQ's high-water marks
push back on the sender.

The inlet, the outlet and the books are injected (each defaults to the one built from the config, as a
deployed stage uses): a stage built with an outlet that does not use ZeroMQ, fed with
:meth:`Stage.on_parts` (encoded messages, as a socket would deliver them), runs its receive path and
:meth:`Stage.process` without sockets, and a test that passes its own books or inlet can look into them.
"""

from __future__ import annotations

import collections
import logging
import os
import signal
import threading
import time

import zmq

from .. import metrics as m
from ..config import STAGES, PipelineConfig
from ..wire import MSG_EOS, MSG_HEARTBEAT, Item, Message
from .books import DropBooks
from .inlet import Inlet
from .outlet import Outlet
from .rate_log import RateLimitedLog

LIVE_QUEUE = 2


class Stage:
    """Base of the four stages (capture has no input and overrides :meth:`loop`)."""

    name = "stage"
    accepts: tuple[str, ...] = ()  # the message types this stage takes (besides end of stream and heartbeats)
    batch_size = 1
    batch_timeout_s = 0.0

    def __init__(self, cfg: PipelineConfig, outlet: Outlet | None = None, *, inlet: Inlet | None = None,
                 books: DropBooks | None = None):
        self.cfg = cfg
        self.log = logging.getLogger(f"facestream.{self.name}")
        self.rlog = RateLimitedLog(self.log)
        self.stop_event = threading.Event()
        self.streams = [s.id for s in cfg.sources]
        self.downstream = self._downstream()
        self.queue: collections.deque[Item] = collections.deque()
        self.eos_done: dict[str, Item] = {}
        self.processing = False  # inside process(): an end of stream received now waits (deferred_eos)
        self.deferred_eos: list[Item] = []
        self.last_hb = 0.0
        self.finished_at: float | None = None
        if books is None:  # an injected inlet brings the books it counts rejected items' drops in
            books = inlet.books if inlet is not None else DropBooks(self.name)
        self.drop_books = books
        if inlet is not None and inlet.books is not books:
            raise ValueError(f"{self.name}: the injected inlet keeps other drop books than the stage")
        if inlet is None and self.name != "capture":  # capture reads its sources, not a socket
            inlet = Inlet(self.name, cfg, self.accepts, books, self.rlog)
        self.inlet = inlet
        if outlet is None and self.downstream:
            outlet = Outlet(self.name, self.downstream, cfg, self.log)
        self.outlet = outlet
        if outlet is not None:
            outlet.bind(self.drop_books, self.stop_event, ending=lambda: self.finished_at is not None)
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
        ctx = zmq.Context.instance()
        if self.inlet is not None:
            self.inlet.open(ctx)
        if self.outlet is not None:
            self.outlet.open(ctx)

    def close(self) -> None:
        if self.outlet is not None:
            self.outlet.close()
        if self.inlet is not None:
            self.inlet.close()

    def setup(self) -> None:
        """Load models etc. Called after sockets are open, before the loop."""

    def teardown(self) -> None:
        """Flush files etc. Called after the loop."""

    def run(self) -> int:
        self.install_signals()
        m.init_series(self.name, self.streams)  # before setup starts readers: "nothing yet" reads 0
        self.open()
        try:
            self.setup()
            m.STAGE_UP.labels(self.name).set(1)
            self.log.info("%s: running (input %s%s)", self.name,
                          self.cfg.bind_endpoint(self.name) if self.inlet else "-",
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
        assert self.inlet is not None and self.inlet.socket is not None
        receiver = self.inlet.socket
        poller = zmq.Poller()
        poller.register(receiver, zmq.POLLIN)
        monitor = self.outlet.monitor if self.outlet is not None else None
        if monitor is not None:
            poller.register(monitor, zmq.POLLIN)
        oldest_wait = None
        holding = False
        while not self.stop_event.is_set():
            timeout_ms = 200
            if holding:
                timeout_ms = 4  # waiting for the downstream to take a frame: look again soon
            elif self.queue:
                timeout_ms = 0 if len(self.queue) >= self.batch_size else max(1, int(self.batch_timeout_s * 1000))
            if self.queue_full():
                timeout_ms = 0
            events = dict(poller.poll(timeout_ms))
            if monitor is not None and monitor in events and self.outlet is not None:
                self.outlet.poll_monitor()
            if receiver in events:
                self.receive_pending()
            if self.queue and oldest_wait is None:
                oldest_wait = time.monotonic()
            holding = False
            if self.queue and (
                len(self.queue) >= self.batch_size
                or oldest_wait is not None and time.monotonic() - oldest_wait >= self.batch_timeout_s
            ):
                holding = self.hold_live()
                if not holding:
                    self.process_queue()
                    oldest_wait = time.monotonic() if self.queue else None
            m.QUEUE_DEPTH.labels(self.name).set(len(self.queue))
            self.housekeeping()
            if self.finished():
                break

    def receive_pending(self, limit: int = 64) -> None:
        """Queue what has arrived, without waiting (up to ``limit`` messages; a lossless backlog stops it)."""
        if self.inlet is None or self.inlet.socket is None:
            return  # not open (a stage driven by hand in tests)
        for _ in range(limit):
            if self.queue_full() and any(it.meta.lossless for it in self.queue):
                break
            try:
                parts = self.inlet.socket.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            self.on_parts(parts)

    def hold_live(self) -> bool:
        """Live frames wait here, newest replacing oldest, while the downstream still has a batch queued."""
        if self.outlet is None or any(it.meta.lossless for it in self.queue):
            return False
        return not self.outlet.has_credit()

    def process_queue(self) -> None:
        """Process the next batch. A batch that fails is dropped and counted (``error``); the stage goes on."""
        if self.outlet is not None:
            self.outlet.beat()
        batch = self.take_batch()
        t0 = time.perf_counter()
        self.processing = True
        try:
            self.process(batch)
        except Exception:  # noqa: BLE001 - one bad batch must not crash-loop the stage
            self.rlog.exception("process", "%s: processing %d items failed; dropped", self.name, len(batch))
            for it in batch:
                self.drop_books.drop(it, "error")
        finally:
            self.processing = False
            m.PROCESSING_SECONDS.labels(self.name).observe(time.perf_counter() - t0)
        while self.deferred_eos:
            self.on_eos(self.deferred_eos.pop(0))

    def take_batch(self) -> list[Item]:
        """The items the next :meth:`process` call gets, taken off the queue: the oldest, up to a batch."""
        return [self.queue.popleft() for _ in range(min(self.batch_size, len(self.queue)))]

    def drain(self) -> None:
        """After a stop request: process what is already queued, within the grace period."""
        deadline = time.monotonic() + self.cfg.supervisor.stop_timeout_s * 0.6
        while self.queue and time.monotonic() < deadline:
            self.process_queue()
        for it in self.queue:
            self.drop_books.drop(it, "shutdown")
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

    def housekeeping(self) -> None:
        if self.inlet is not None:
            self.inlet.check_peers()
        if self.outlet is not None:
            self.outlet.beat()
        now = time.monotonic()
        if self.outlet is not None and now - self.last_hb >= self.cfg.transport.heartbeat_s:
            self.last_hb = now
            if self.finished_at is not None:  # re-send end-of-stream in case a restarted peer missed it
                for it in self.eos_done.values():
                    self.forward_eos(it, wait=False)

    # --- input -------------------------------------------------------------------------------------------

    def on_parts(self, parts: list) -> None:
        """One received multipart message: validated by the inlet, then queued (or ends its stream)."""
        assert self.inlet is not None
        msg = self.inlet.receive(parts)
        if msg is None or msg.type == MSG_HEARTBEAT:
            return
        for it in msg.items:
            if msg.type == MSG_EOS and self.processing:
                self.deferred_eos.append(it)  # received while a batch is processed (receive_pending)
            elif msg.type == MSG_EOS:
                self.on_eos(it)
            else:
                self.enqueue(it)

    def enqueue(self, it: Item) -> None:
        self.queue.append(it)
        if not it.meta.lossless:
            live = [x for x in self.queue if x.stream == it.stream]
            while len(live) > LIVE_QUEUE:
                old = live.pop(0)
                self.queue.remove(old)
                self.drop_stale(old)

    def drop_stale(self, item: Item) -> None:
        """A live item superseded by a newer one of its stream before it was used."""
        self.drop_books.drop(item, "stale")
        if self.inlet is not None:
            self.inlet.fate(item, used=False)

    def process(self, items: list[Item]) -> None:
        raise NotImplementedError

    # --- end of stream -----------------------------------------------------------------------------------

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
        self.drop_books.merge(item)
        if first:
            self.stream_ended(item)
            self.eos_done[item.stream] = item
        self.forward_eos(self.eos_done[item.stream], wait=first)

    def stream_ended(self, item: Item) -> None:
        """Hook: a stream's first end of stream, after its frames were processed, before it goes on."""

    def forward_eos(self, item: Item, wait: bool = True) -> None:
        """Send end-of-stream on; the first time it waits for the hop like a lossless frame."""
        if self.outlet is None:
            return
        self.drop_books.attach(item)
        if self.outlet.send(Message(MSG_EOS, [item], self.name, time.time_ns()), lossless=wait):
            item.drops = []  # delivered: a re-send must not count them again
        else:
            self.drop_books.merge(item)  # not delivered: they go with the next send
