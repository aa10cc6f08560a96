"""A real ``nats-server -js`` on loopback (subprocess, its own store dir) and a nats-py pull consumer that
reads back everything a stream holds."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from pathlib import Path

import nats
import nats.errors
import pytest

from tests.support.loopback_server import LoopbackServer

from .mqtt_support import free_port

needs_nats = pytest.mark.skipif(shutil.which("nats-server") is None,
                                reason="nats-server is not installed (apt-get install nats-server)")


class NatsServer(LoopbackServer):
    """``nats-server -js -a 127.0.0.1 -p PORT -sd STORE``; ``kill`` + ``start`` reuses port and store."""

    def __init__(self, tmp: Path, port: int | None = None):
        super().__init__(tmp, port or free_port())
        self.store = tmp / "jetstream"

    name = "nats"
    ready_text = "Server is ready"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return ["nats-server", "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store)]


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
            except asyncio.TimeoutError:  # nats-py raises its subclass, or on some timings asyncio's own
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
