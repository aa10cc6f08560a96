"""An outlet sees a downstream that is already bound (#13): its socket monitor is attached before it connects,
so the connection event cannot be missed. A missed event left the hop "not connected" for the whole run, and a
lossless shared-memory writer, seeing no reader, overwrote unread slots (44 of 60 frames lost when inference
bound its socket before preprocess connected)."""

from __future__ import annotations

import logging
import time

import zmq

from facestream.pipeline.config import load_config
from facestream.pipeline.stages.outlet import Outlet


def test_an_outlet_sees_a_downstream_that_was_there_first(tmp_path):
    cfg = load_config(None, environ={}, overrides={"transport": {"run_dir": str(tmp_path)}})
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.linger = 0
    pull.bind(cfg.bind_endpoint("inference"))
    try:
        for attempt in range(20):  # the event fires within microseconds of connect(): try it many times
            outlet = Outlet("preprocess", "inference", cfg, logging.getLogger("test"))
            outlet.open(ctx)
            try:
                deadline = time.monotonic() + 2.0
                while not outlet.connected and time.monotonic() < deadline:
                    time.sleep(0.01)
                    outlet.poll_monitor()
                assert outlet.connected, f"attempt {attempt}: the outlet never saw its connected downstream"
                assert not outlet.reader_gone()
            finally:
                outlet.close()
    finally:
        pull.close()
        ctx.destroy(0)
