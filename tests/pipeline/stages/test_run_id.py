"""A stage takes only messages of its own run (#13: two runs on one host must never take each other's frames).

With ``transport.run_id`` set (``facestream run`` sets a fresh one), a message or heartbeat carrying another
run's id, or none, is rejected as ``other_run``, counted, and gives its shared-memory slot back; a message of
the stage's own run goes through. Without a run id (stages started one by one) nothing is checked.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from facestream.pipeline.codec import PayloadEncoder
from facestream.pipeline.records import ItemMeta
from facestream.pipeline.stages.preprocess import PreprocessStage
from facestream.pipeline.wire import MSG_FRAME, MSG_HEARTBEAT, Item, Message, WireError, decode, encode

from .memory_outlet import config, rejected, stage_with_memory_outlet


def _frame(seq: int, run: str, enc: PayloadEncoder | None = None) -> list[bytes]:
    it = Item("cam", seq, 1, 1, meta=ItemMeta("lossless", 5))
    data = np.full((32, 32, 3), 9, np.uint8)
    if enc is not None:
        enc.attach(it, data)
    else:
        from facestream.pipeline.wire import raw_payload

        it.data, it.payload = data, raw_payload(data)
    return [bytes(p) for p in encode(Message(MSG_FRAME, [it], "capture", 1, run=run))]


def _stage(tmp_path, run_id: str):
    return stage_with_memory_outlet(PreprocessStage, config(tmp_path, transport={"run_id": run_id},
                                                            preprocess={"batch_size": 1}), "inference")


def test_the_run_id_travels_in_the_header_and_is_checked_like_any_field():
    assert decode(encode(Message(MSG_HEARTBEAT, [Item("capture", 0)], "capture", 1, run="a1b2"))).run == "a1b2"
    assert decode(encode(Message(MSG_HEARTBEAT, [Item("capture", 0)], "capture", 1))).run == ""
    import msgpack

    bad = msgpack.packb({"v": 1, "t": "hb", "from": "capture", "sent": 1, "run": "../x",
                         "items": [{"stream": "capture", "seq": 0, "ts": [0, 0]}]})
    with pytest.raises(WireError, match="header.run"):
        decode([bad])


@pytest.mark.parametrize("other", ["0123456789abcdef", ""], ids=["another run", "no run id"])
def test_a_message_of_another_run_is_rejected_and_counted(tmp_path, other):
    stage, out = _stage(tmp_path, "feedc0ffee123456")
    before = rejected("preprocess", "other_run")
    stage.on_parts(_frame(1, other))
    assert rejected("preprocess", "other_run") == before + 1
    assert not stage.queue
    stage.on_parts(_frame(2, "feedc0ffee123456"))
    stage.process_queue()
    assert [it.seq for it in out.items()] == [2], "the run's own frame goes through"


def test_a_heartbeat_of_another_run_does_not_vouch_for_a_peer(tmp_path):
    stage, _ = _stage(tmp_path, "feedc0ffee123456")
    hb = encode(Message(MSG_HEARTBEAT, [Item("capture", 0)], "capture", 1, run="0123456789abcdef"))
    stage.on_parts([bytes(p) for p in hb])
    assert "capture" not in stage.inlet.peers


def test_a_rejected_shared_memory_frame_of_another_run_gives_its_slot_back(tmp_path):
    stage, _ = _stage(tmp_path, "feedc0ffee123456")
    enc = PayloadEncoder("shm", shm_prefix=f"run{os.getpid()}", shm_slots=1)
    enc.set_reader_hooks(lambda: False, lambda: None)  # a reader that is there: a lossless write would wait
    try:
        stage.on_parts(_frame(1, "0123456789abcdef", enc))
        assert enc.shm is not None and enc.shm.unread() == 0
    finally:
        enc.close()


def test_without_a_run_id_nothing_is_checked(tmp_path):
    stage, out = _stage(tmp_path, "")
    stage.on_parts(_frame(3, "0123456789abcdef"))
    stage.on_parts(_frame(4, ""))
    stage.process_queue()
    stage.process_queue()
    assert [it.seq for it in out.items()] == [3, 4]
