"""A stage's input: the bound PULL socket, the wire decoder, rejection counting and upstream liveness.

Everything a peer sends is untrusted: :meth:`Inlet.receive` decodes and validates a message (header, items,
meta records, payloads); anything that breaks the protocol is counted in
``facestream_messages_rejected_total{stage, reason}``, logged (rate-limited) and dropped, and the stage
carries on. Messages of a type this stage does not take, items of streams it does not know, and (when
``transport.run_id`` is set, as ``facestream run`` does) messages of another run are rejected the same way.
"""

from __future__ import annotations

import time

import zmq

from .. import metrics as m
from ..codec import PayloadDecoder
from ..config import PipelineConfig
from ..shm import ShmOverrun
from ..transport import open_receiver
from ..wire import ENC_SHM, MAX_STAGES, MSG_EOS, MSG_HEARTBEAT, Message, WireError, decode
from .books import DropBooks
from .rate_log import RateLimitedLog


class Inlet:
    def __init__(self, stage: str, cfg: PipelineConfig, accepts: tuple[str, ...], books: DropBooks,
                 rlog: RateLimitedLog):
        self.stage, self.cfg, self.books, self.rlog = stage, cfg, books, rlog
        self.accepts = (*accepts, MSG_EOS, MSG_HEARTBEAT)
        self.streams = {s.id for s in cfg.sources}
        self.decoder = PayloadDecoder()
        self.socket: zmq.Socket | None = None
        self.peers: dict[str, float] = {}
        self.peer_down: set[str] = set()
        # Shared-memory payloads are accepted only on a same-host (ipc://) input.
        self.local = cfg.bind_endpoint(stage).startswith("ipc://")

    def open(self, ctx: zmq.Context) -> None:
        self.socket = open_receiver(ctx, self.cfg, self.stage)

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close()
        self.decoder.close()

    def reject(self, reason: str, what: str, detail: object) -> None:
        m.MESSAGES_REJECTED.labels(self.stage, reason).inc()
        self.rlog.warning("reject:" + reason, "%s: rejected %s: %s", self.stage, what, detail)

    def receive(self, parts: list) -> Message | None:
        """Decode ``parts``: the message with its accepted items (payloads decoded), or None if rejected."""
        try:
            msg = decode(parts, self.cfg.transport.max_payload_mb << 20)
        except WireError as exc:
            self.reject(exc.reason, "a message", exc)
            return None
        except Exception as exc:  # noqa: BLE001 - a hostile message must never stop the stage
            self.reject("internal", "a message", f"{type(exc).__name__}: {exc}")
            return None
        run = self.cfg.transport.run_id
        if run and msg.run != run:
            # Another run's stage (a second run on this host, a stale process on a reused run_dir): never its
            # frames, nor its heartbeats as this run's peer.
            self.reject("other_run", "a message", f"of run {msg.run or '(none)'!r}; this is run {run!r}")
            self.release(msg.items)
            return None
        self.heard(msg.sender or "upstream")
        if msg.type not in self.accepts:
            self.reject("bad_type", "a message", f"{self.stage} does not take {msg.type!r} messages")
            self.release(msg.items)
            return None
        if msg.type == MSG_HEARTBEAT:
            return msg
        now = time.time_ns()
        items = []
        for it in msg.items:
            if it.stream not in self.streams:
                self.reject("unknown_stream", "an item", f"stream {it.stream!r}")
                self.release([it])
                continue
            if it.payload.encoding == ENC_SHM and not self.local:
                # A shared-memory descriptor only means something on this host: never over tcp.
                self.reject("shm_over_tcp", "an item", f"stream {it.stream!r}")
                continue
            if msg.type == MSG_EOS:
                items.append(it)
                continue
            m.FRAMES_IN.labels(self.stage, it.stream).inc()
            if len(it.stages) < MAX_STAGES:
                it.stages.append([self.stage, now, 0])
            try:
                it.data = self.decoder.array(it)
            except ShmOverrun:
                self.books.drop(it, "shm_overrun")
                continue
            except WireError as exc:
                self.reject(exc.reason, "an item", exc)
                self.books.drop(it, "rejected")
                continue
            items.append(it)
        msg.items = items
        return msg

    def fate(self, item, used: bool) -> None:
        """A live item this inlet received was used (sent on) or dropped unused; its shared-memory writer
        upstream reads the tally (capture then decodes no more than is used: sources/decode_pace.py)."""
        if self.local and not item.meta.lossless:
            self.decoder.note(item, used)

    def release(self, items: list) -> None:
        """Rejected items give their shared-memory slots back, so the sender's lossless wait ends."""
        if self.local:
            for it in items:
                self.decoder.release(it)

    # --- liveness ----------------------------------------------------------------------------------------

    def heard(self, peer: str) -> None:
        self.peers[peer] = time.monotonic()
        if peer in self.peer_down:
            self.peer_down.discard(peer)
            self.rlog.log.info("%s: peer %s is back", self.stage, peer)
        m.PEER_UP.labels(self.stage, peer).set(1)

    def check_peers(self) -> None:
        """Report upstream peers silent for longer than ``transport.peer_timeout_s``."""
        now = time.monotonic()
        for peer, last in self.peers.items():
            if peer not in self.peer_down and now - last > self.cfg.transport.peer_timeout_s:
                self.peer_down.add(peer)
                m.PEER_UP.labels(self.stage, peer).set(0)
                m.HEARTBEATS_MISSED.labels(self.stage, peer).inc()
                self.rlog.log.warning("%s: peer %s silent for %.1f s", self.stage, peer, now - last)
