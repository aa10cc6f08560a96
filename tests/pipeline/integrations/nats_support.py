"""A real ``nats-server -js`` on loopback (subprocess, its own store dir) and a nats-py pull consumer that
reads back everything a stream holds."""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import nats
import nats.errors
import pytest

from ..helpers import wait_for
from .mqtt_support import free_port

needs_nats = pytest.mark.skipif(shutil.which("nats-server") is None,
                                reason="nats-server is not installed (apt-get install nats-server)")


class NatsServer:
    """``nats-server -js -a 127.0.0.1 -p PORT -sd STORE``; ``kill`` + ``start`` reuses port and store."""

    def __init__(self, tmp: Path, port: int | None = None):
        self.tmp, self.port = tmp, port or free_port()
        self.store = tmp / "jetstream"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> NatsServer:
        self.starts += 1
        log = open(self.tmp / f"nats-{self.starts}.log", "wb")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(["nats-server", "-js", "-a", "127.0.0.1", "-p", str(self.port),
                                      "-sd", str(self.store)], stdout=log, stderr=subprocess.STDOUT)

        def ready() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.log_text()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            except OSError:
                return False
            return "Server is ready" in self.log_text()

        wait_for(ready, 15, "nats-server to listen", interval=0.05)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        self.proc = None

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.tmp.glob("nats-*.log")))


@dataclass
class Stored:
    subject: str
    data: bytes
    msg_id: str
    seq: int


async def _read_all(url: str, stream: str, subject: str) -> tuple[list[Stored], int]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        total = (await js.stream_info(stream)).state.messages
        sub = await js.pull_subscribe(subject, stream=stream)  # an ephemeral consumer from the first message
        out: list[Stored] = []
        while True:
            try:
                batch = await sub.fetch(100, timeout=1.0)
            except nats.errors.TimeoutError:
                break
            for msg in batch:
                out.append(Stored(msg.subject, msg.data, (msg.headers or {}).get("Nats-Msg-Id", ""),
                                  msg.metadata.sequence.stream))
                await msg.ack()
        return out, total
    finally:
        await nc.close()


def read_stream(url: str, stream: str = "FACESTREAM", subject: str = "facestream.>") -> tuple[list[Stored], int]:
    """Every message a fresh consumer of ``subject`` gets (in stream order) and the stream's message count."""
    return asyncio.run(_read_all(url, stream, subject))


def stream_count(url: str, stream: str = "FACESTREAM") -> int:
    async def count() -> int:
        nc = await nats.connect(url)
        try:
            return (await nc.jetstream().stream_info(stream)).state.messages
        finally:
            await nc.close()

    try:
        return asyncio.run(count())
    except Exception:
        return -1
