"""Heartbeats on their own thread and socket, so a stage busy with a long batch still says it is alive.

The thread vouches for the stage only while its main loop makes progress (``beat()``); a stage whose loop
is stuck for ``stall_s`` stops sending and its downstream reports it down, as it should.
"""

from __future__ import annotations

import threading
import time

import zmq

from ..config import PipelineConfig
from ..transport import open_sender
from ..wire import MSG_HEARTBEAT, Item, Message, encode


class HeartbeatSender(threading.Thread):
    def __init__(self, ctx: zmq.Context, cfg: PipelineConfig, stage: str, downstream: str, stall_s: float = 30.0):
        super().__init__(name=f"heartbeat-{stage}", daemon=True)
        self.ctx, self.cfg, self.stage, self.downstream, self.stall_s = ctx, cfg, stage, downstream, stall_s
        self.progress_at = time.monotonic()
        self.stop_event = threading.Event()
        self.sent = 0

    def beat(self) -> None:
        self.progress_at = time.monotonic()

    def run(self) -> None:
        sock = open_sender(self.ctx, self.cfg, self.downstream)
        try:
            while not self.stop_event.wait(self.cfg.transport.heartbeat_s):
                if time.monotonic() - self.progress_at > self.stall_s:
                    continue
                hb = Message(MSG_HEARTBEAT, [Item(stream=self.stage, seq=0)], self.stage, time.time_ns(),
                             run=self.cfg.transport.run_id)
                try:
                    sock.send_multipart(encode(hb), zmq.NOBLOCK)
                    self.sent += 1
                except zmq.Again:
                    pass
        finally:
            sock.close(0)

    def stop(self) -> None:
        self.stop_event.set()
        self.join(2.0)
