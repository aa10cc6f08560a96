"""Stages over tcp:// with CURVE: the run completes encrypted; a peer with an unknown key is refused and counted."""

from __future__ import annotations

import pytest
import zmq

from facestream.pipeline.security import generate_keypair, load_secret_key, public_key_of

from .helpers import (
    cli,
    make_config,
    metric_sum,
    metrics_url,
    read_results,
    scrape,
    start,
    stop,
    tcp_hops,
    wait_for,
)

pytestmark = pytest.mark.slow


def test_curve_pipeline_runs_and_refuses_unknown_keys(tmp_path):
    keys = generate_keypair(tmp_path / "keys", "host")
    hops = tcp_hops()
    curve = {"enabled": True, "key_dir": str(tmp_path / "keys"), "key_name": "host",
             "allowed_clients": [str(keys.public)], "server_public_key": str(keys.public)}
    cfg = make_config(tmp_path, [{"id": "cam", "uri": "demo", "loop": True, "policy": "latest", "max_fps": 10}],
                      transport={**hops, "curve": curve})
    proc = start(cli("run", str(cfg)), tmp_path / "log.txt")
    ctx = zmq.Context()
    try:
        wait_for(lambda: len(read_results(tmp_path / "out")) >= 5, 120, "results over CURVE")
        url = wait_for(lambda: metrics_url(tmp_path / "run", "preprocess"), 30, "preprocess metrics")
        rogue = ctx.socket(zmq.PUSH)
        rogue_pub, rogue_sec = zmq.curve_keypair()
        rogue.curve_secretkey, rogue.curve_publickey = rogue_sec, rogue_pub
        rogue.curve_serverkey = public_key_of(load_secret_key(keys.secret))
        rogue.setsockopt(zmq.LINGER, 0)
        rogue.connect(hops["preprocess"]["bind"])
        rogue.send_multipart([b"payload from an intruder"], zmq.NOBLOCK) if rogue.poll(0, zmq.POLLOUT) else None
        wait_for(lambda: metric_sum(scrape(url), "facestream_transport_auth_failures_total") >= 1, 30,
                 "the refusal to be counted")
        assert metric_sum(scrape(url), "facestream_messages_rejected_total") == 0, "nothing from the intruder got in"
        rogue.close()
    finally:
        ctx.term()
        stop(proc)
    assert "refused peer" in (tmp_path / "log.txt").read_text()
