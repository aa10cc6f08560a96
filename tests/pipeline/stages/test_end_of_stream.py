"""End of stream through a stage over real sockets: re-sent ones never block, drops are counted once."""

from __future__ import annotations

import threading
import time

import zmq

from facestream.pipeline.config import load_config
from facestream.pipeline.records import ItemMeta
from facestream.pipeline.stages.base import Stage
from facestream.pipeline.wire import MSG_EOS, Item, decode


class PassStage(Stage):
    """The base stage with nothing to do per item, placed as preprocess (it sends to inference)."""

    name = "preprocess"

    def process(self, items: list[Item]) -> None:  # pragma: no cover - no frames in these tests
        pass


def _stage(tmp_path) -> tuple[Stage, zmq.Socket]:
    cfg = load_config(None, environ={}, overrides={
        "sources": [{"id": "cam", "uri": "demo"}],
        "transport": {"run_dir": str(tmp_path), "heartbeat_s": 0.2},
    })
    pull = zmq.Context.instance().socket(zmq.PULL)
    pull.bind(cfg.bind_endpoint("inference"))
    stage = PassStage(cfg)
    stage.open()
    return stage, pull


def _recv_eos(pull: zmq.Socket, timeout_ms: int = 5000) -> Item | None:
    end = time.monotonic() + timeout_ms / 1000
    while time.monotonic() < end:
        if pull.poll(100):
            msg = decode(pull.recv_multipart())
            if msg.type == MSG_EOS:
                return msg.items[0]
    return None


def test_a_repeated_end_of_stream_after_downstream_left_does_not_block(tmp_path):
    stage, pull = _stage(tmp_path)
    try:
        stage.on_eos(Item("cam", 41, meta=ItemMeta(frames_total=42)))
        first = _recv_eos(pull)
        assert first is not None and first.seq == 41
        pull.close(0)  # downstream finished and exited
        time.sleep(0.5)  # long enough for the sender to notice the peer is gone
        done = threading.Event()
        t = threading.Thread(target=lambda: (stage.on_eos(Item("cam", 41)), done.set()), daemon=True)
        t.start()
        assert done.wait(5), "a re-sent end of stream waited for a downstream that has exited"
    finally:
        stage.stop_event.set()
        stage.close()


def test_drops_carried_by_end_of_stream_are_sent_once(tmp_path):
    stage, pull = _stage(tmp_path)
    try:
        stage.drop_books.drop(Item("cam", 7), "stale")
        stage.on_eos(Item("cam", 9, drops=[["capture", "overrun", 2]]))
        first = _recv_eos(pull)
        assert first is not None
        assert sorted(map(tuple, first.drops)) == [("capture", "overrun", 2), ("preprocess", "stale", 1)]
        stage.finished_at = time.monotonic()
        for _ in range(2):  # once finished, the stage re-sends its end of stream every heartbeat
            stage.last_hb = 0.0
            stage.housekeeping()
        stage.on_eos(Item("cam", 9))  # and the upstream re-sends it too
        repeats = [_recv_eos(pull, 1000) for _ in range(3)]
        assert all(r is not None for r in repeats), "re-sent end of stream did not arrive"
        assert all(r.drops == [] for r in repeats), f"drops re-counted on a re-send: {[r.drops for r in repeats]}"
    finally:
        stage.stop_event.set()
        stage.close()
        pull.close(0)
