"""The seam for driving a stage without ZeroMQ: an outlet that keeps what the stage sends, and helpers
that hand the stage encoded messages the way its socket would.

:class:`MemoryOutlet` is the real :class:`Outlet` (stamping, drop books, backpressure accounting, payload
encoding) with only the socket replaced: every message is encoded, decoded back (so what is kept passed the
receiving side's validation) and appended to ``sent``. ``full = True`` makes it behave like a full hop.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import zmq
from prometheus_client import REGISTRY

from facestream.pipeline.config import PipelineConfig, load_config
from facestream.pipeline.stages.outlet import Outlet
from facestream.pipeline.wire import Item, Message, decode, encode, raw_payload


class MemoryOutlet(Outlet):
    def __init__(self, stage: str, downstream: str, cfg: PipelineConfig, encoding: str = "raw"):
        super().__init__(stage, downstream, cfg, logging.getLogger("facestream.test.outlet"))
        self.encoding = encoding
        self.sent: list[Message] = []
        self.full = False

    def open(self, ctx: zmq.Context | None = None) -> None:
        self.open_encoder(self.encoding)

    def deliver(self, parts: list[Any], lossless: bool) -> bool:
        if self.full:
            return False
        self.sent.append(decode([bytes(p) for p in parts]))
        return True

    def items(self, mtype: str | None = None) -> list[Item]:
        return [it for msg in self.sent if mtype is None or msg.type == mtype for it in msg.items]


def stage_with_memory_outlet(cls, cfg: PipelineConfig, downstream: str | None, **parts: Any):
    """``cls(cfg)`` with a :class:`MemoryOutlet` (or none, for the sink), opened without sockets; ``parts``
    (``inlet=``, ``books=``) are injected as given."""
    outlet = MemoryOutlet(cls.name, downstream, cfg) if downstream else None
    stage = cls(cfg, outlet=outlet, **parts)
    if outlet is not None:
        outlet.open()
    return stage, outlet


def config(tmp_path: Path, **sections: dict[str, Any]) -> PipelineConfig:
    base: dict[str, Any] = {"sources": [{"id": "cam", "uri": "demo"}],
                            "transport": {"run_dir": str(tmp_path / "run")},
                            "sink": {"out_dir": str(tmp_path / "out")},
                            "inference": {"embed": False, "recognizer": "none", "hog_upsample": 0, "min_face": 20}}
    for key, value in sections.items():
        if isinstance(value, list):  # sources
            base[key] = value
        else:
            base.setdefault(key, {}).update(value)
    return load_config(None, environ={}, overrides=base)


def message(mtype: str, items: list[Item], sender: str) -> list[bytes]:
    """A message as the receiving socket hands it over (bytes parts)."""
    for it in items:
        if isinstance(it.data, np.ndarray):
            it.payload = raw_payload(it.data)
    return [bytes(p) for p in encode(Message(mtype, items, sender, 1))]


def header_with(mtype: str, item: dict[str, Any], sender: str) -> list[bytes]:
    """A hand-built header carrying ``item`` as given (to send fields the encoder would never write)."""
    import msgpack

    return [msgpack.packb({"v": 1, "t": mtype, "from": sender, "sent": 1, "items": [item]}, use_bin_type=True)]


def rejected(stage: str, reason: str) -> float:
    return REGISTRY.get_sample_value("facestream_messages_rejected_total", {"stage": stage, "reason": reason}) or 0.0


def dropped(stage: str, stream: str, reason: str) -> float:
    return REGISTRY.get_sample_value("facestream_frames_dropped_total",
                                     {"stage": stage, "stream": stream, "reason": reason}) or 0.0
