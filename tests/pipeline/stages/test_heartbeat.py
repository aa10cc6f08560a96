"""Heartbeats flow from their own thread while the stage makes progress, and stop when its loop hangs."""

from __future__ import annotations

import time

import zmq

from facestream.pipeline.config import load_config
from facestream.pipeline.stages.heartbeat import HeartbeatSender
from facestream.pipeline.wire import MSG_HEARTBEAT, decode


def _count(sock: zmq.Socket, seconds: float) -> int:
    n, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        if sock.poll(50):
            msg = decode(sock.recv_multipart())
            assert msg.type == MSG_HEARTBEAT and msg.sender == "preprocess"
            n += 1
    return n


def test_heartbeats_while_progressing_and_silence_when_the_loop_hangs(tmp_path):
    cfg = load_config(None, environ={}, overrides={"transport": {"run_dir": str(tmp_path), "heartbeat_s": 0.1}})
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.bind(cfg.bind_endpoint("inference"))
    hb = HeartbeatSender(ctx, cfg, "preprocess", "inference", stall_s=0.6)
    hb.start()
    try:
        for _ in range(8):  # a busy but healthy stage: beats keep coming while progress is reported
            hb.beat()
            time.sleep(0.1)
        assert _count(pull, 0.3) >= 2
        time.sleep(0.8)  # no progress for longer than stall_s: a hung loop
        _count(pull, 0.15)  # what was sent before the stall was detected
        assert _count(pull, 0.5) == 0, "a stage whose loop is stuck must not look alive"
        hb.beat()
        assert _count(pull, 0.5) >= 2, "heartbeats resume with progress"
    finally:
        hb.stop()
        pull.close(0)
        ctx.term()
