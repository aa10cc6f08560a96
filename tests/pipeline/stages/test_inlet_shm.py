"""Shared-memory payloads at a stage's input: refused over tcp, and a rejected item gives its slot back."""

from __future__ import annotations

import os

import numpy as np

from facestream.pipeline.codec import PayloadEncoder
from facestream.pipeline.stages.preprocess import PreprocessStage
from facestream.pipeline.wire import MSG_FRAME, Item, Message, encode

from .memory_outlet import config, rejected, stage_with_memory_outlet


def _shm_frame(enc: PayloadEncoder, stream: str) -> list[bytes]:
    it = Item(stream, 0, 1, 1)
    enc.attach(it, np.full((16, 16, 3), 9, np.uint8))
    return [bytes(p) for p in encode(Message(MSG_FRAME, [it], "capture", 1))]


def test_a_shared_memory_payload_on_a_tcp_input_is_rejected(tmp_path):
    cfg = config(tmp_path, transport={"preprocess": {"bind": "tcp://127.0.0.1:5999"}})
    stage, _ = stage_with_memory_outlet(PreprocessStage, cfg, "inference")
    enc = PayloadEncoder("shm", shm_prefix=f"tcp{os.getpid()}", shm_slots=2)
    try:
        before = rejected("preprocess", "shm_over_tcp")
        msg = stage.inlet.receive(_shm_frame(enc, "cam"))
        assert msg is not None and msg.items == []
        assert rejected("preprocess", "shm_over_tcp") == before + 1
    finally:
        enc.close()


def test_an_item_rejected_unread_gives_its_slot_back(tmp_path):
    stage, _ = stage_with_memory_outlet(PreprocessStage, config(tmp_path), "inference")
    enc = PayloadEncoder("shm", shm_prefix=f"rel{os.getpid()}", shm_slots=1)
    enc.set_reader_hooks(lambda: False, lambda: None)  # a reader that is there: a lossless write would wait
    try:
        before = rejected("preprocess", "unknown_stream")
        stage.inlet.receive(_shm_frame(enc, "not-configured"))
        assert rejected("preprocess", "unknown_stream") == before + 1
        hdr = enc.shm._header(0)
        assert int(hdr[2]) == int(hdr[0]), "the rejected item's slot was released"
    finally:
        enc.close()
