"""Live frames are held at the sender while the next stage has a batch it has not taken yet.

A live frame copied into a ring slot the slow reader laps is work thrown away and a frame lost as
``shm_overrun``; held back in the sender's latest-frame queue, a newer frame replaces it for nothing.
"""

from __future__ import annotations

import os

import numpy as np

from facestream.pipeline.records import ItemMeta
from facestream.pipeline.stages.preprocess import PreprocessStage
from facestream.pipeline.wire import Item

from .memory_outlet import config, stage_with_memory_outlet


def _live(seq: int) -> Item:
    return Item("cam", seq, 1, 1, meta=ItemMeta(policy="latest"))


def test_the_sender_holds_live_frames_while_the_reader_has_a_batch_unread(tmp_path):
    cfg = config(tmp_path, preprocess={"batch_size": 2, "live_batch": 2})
    stage, outlet = stage_with_memory_outlet(PreprocessStage, cfg, "inference")
    outlet.encoder.close()
    outlet.open_encoder("shm")
    outlet.encoder.shm.prefix = f"credit{os.getpid()}"
    try:
        assert outlet.live_credit == 2 and outlet.has_credit()
        frame = np.zeros((8, 8, 3), np.uint8)
        for k in range(2):  # two frames written, none read yet: the reader's next batch is there
            outlet.attach(_live(k), frame)
        assert not outlet.has_credit()
        stage.queue.extend([_live(5), _live(6)])
        assert stage.hold_live(), "live frames wait while the reader is a batch behind"
        stage.queue.append(Item("cam", 7, 1, 1, meta=ItemMeta(policy="lossless")))
        assert not stage.hold_live(), "lossless items never wait here: the ring itself waits for them"
        outlet.encoder.reader_left()  # the reader took (or lost) them: credit is back
        assert outlet.has_credit()
    finally:
        outlet.encoder.close()


def test_encodings_that_cannot_tell_the_backlog_always_have_credit(tmp_path):
    _, outlet = stage_with_memory_outlet(PreprocessStage, config(tmp_path), "inference")
    assert outlet.encoder.backlog() is None and outlet.has_credit()


def test_live_frames_go_to_inference_one_at_a_time_by_default_and_two_ahead_into_preprocess(tmp_path):
    cfg = config(tmp_path)
    assert cfg.live_credit("inference") == 1, "one live frame in flight by default (latency)"
    assert cfg.live_credit("preprocess") == max(2, cfg.preprocess.batch_size)


def _frame(stream: str, seq: int) -> Item:
    return Item(stream, seq, 1, 1, meta=ItemMeta(policy="latest"))


def test_preprocess_sends_the_newest_frame_of_the_stream_served_longest_ago(tmp_path):
    cfg = config(tmp_path, preprocess={"batch_size": 4})
    stage, outlet = stage_with_memory_outlet(PreprocessStage, cfg, "inference")
    img = np.zeros((8, 8, 3), np.uint8)
    sent = []
    for a, b in ((1, 2), (3, 4), (5, 6)):
        for it in (_frame("a", a), _frame("b", a), _frame("a", b), _frame("b", b)):
            it.data = img
            stage.queue.append(it)
        stage.process_queue()
        sent += [(it.stream, it.seq) for it in outlet.items()[len(sent):]]
        assert len(stage.queue) == 1, "one frame in flight: the other stream's newest waits for the next round"
        stage.queue.clear()
    assert sent == [("a", 2), ("b", 4), ("a", 6)], "the newest frame, streams taking turns"
    carried = sum(c for it in outlet.items() for _, reason, c in it.drops if reason == "stale")
    pending = sum(c for p in stage.drop_books.pending.values() for (_, reason), c in p.items() if reason == "stale")
    assert carried + pending == 6, "each superseded frame is counted as stale, none lost silently"
