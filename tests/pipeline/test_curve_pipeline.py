"""Stages over tcp:// with CURVE: the run completes encrypted; on every hop, an intruder with an unknown key and
one speaking plain text are refused, the refusal is counted by that hop's receiver, and the wire-valid frame
each of them queued never arrives (#13: no longer one hop only, nor a send that depends on POLLOUT)."""

from __future__ import annotations

import time

import pytest
import zmq

from facestream.pipeline.security import generate_keypair, load_secret_key, public_key_of

from .helpers import (
    UPSTREAM,
    cli,
    good_message,
    make_config,
    metric_sum,
    metrics_url,
    read_results,
    run_id,
    scrape,
    start,
    stop,
    tcp_hops,
    wait_for,
)

pytestmark = pytest.mark.slow


def _intruder(ctx: zmq.Context, endpoint: str, server_key: bytes | None) -> zmq.Socket:
    """A PUSH that queues a message at once (no IMMEDIATE): the handshake decides whether it is ever delivered."""
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 0)
    if server_key is not None:
        rogue_pub, rogue_sec = zmq.curve_keypair()
        sock.curve_secretkey, sock.curve_publickey, sock.curve_serverkey = rogue_sec, rogue_pub, server_key
    sock.connect(endpoint)
    return sock


def _queue(sock: zmq.Socket, parts: list, timeout_s: float) -> bool:
    """Queue ``parts`` on the intruder's socket within ``timeout_s``. Without IMMEDIATE its pipe exists from
    connect() until a refused handshake drops it, so a send soon after connect() is queued whatever POLLOUT
    says (``_queued_intruder`` covers the refusal that comes first)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            sock.send_multipart(parts, zmq.NOBLOCK)
            return True
        except zmq.Again:
            time.sleep(0.005)
    return False


def _queued_intruder(ctx: zmq.Context, endpoint: str, server_key: bytes | None, parts: list,
                     attempts: int = 20) -> zmq.Socket | None:
    """An intruder whose frame is queued. On a busy machine a ZAP refusal can come between connect() and the
    send; the refused session then ends with its pipe and every later send is Again, so try a fresh socket."""
    for _ in range(attempts):
        sock = _intruder(ctx, endpoint, server_key)
        if _queue(sock, parts, timeout_s=0.5):
            return sock
        sock.close()
    return None


def test_curve_pipeline_runs_and_refuses_unknown_keys_on_every_hop(tmp_path):
    keys = generate_keypair(tmp_path / "keys", "host")
    hops = tcp_hops()
    curve = {"enabled": True, "key_dir": str(tmp_path / "keys"), "key_name": "host",
             "allowed_clients": [str(keys.public)], "server_public_key": str(keys.public)}
    cfg = make_config(tmp_path, [{"id": "cam", "uri": "demo", "loop": True, "policy": "latest", "max_fps": 10}],
                      transport={**hops, "curve": curve})
    proc = start(cli("run", str(cfg)), tmp_path / "log.txt")
    ctx = zmq.Context()
    server_key = public_key_of(load_secret_key(keys.secret))
    intruder_seqs = {}
    try:
        wait_for(lambda: len(read_results(tmp_path / "out")) >= 5, 120, "results over CURVE")
        urls = {s: wait_for(lambda s=s: metrics_url(tmp_path / "run", s), 30, f"{s} metrics") for s in UPSTREAM}
        socks = []
        for n, stage in enumerate(UPSTREAM):
            for k, key in enumerate((server_key, None)):  # an unknown CURVE key; plain text
                seq = 2_000_000 + 10 * n + k
                # This run's id: a frame the stage would take, were it let through. Built before connecting, so
                # it is queued before any handshake.
                parts = good_message(stage, seq, run_id(tmp_path / "run"))
                sock = _queued_intruder(ctx, hops[stage]["bind"], key, parts)
                assert sock is not None, f"the intruder on {stage} could not queue its frame"
                intruder_seqs[seq] = stage
                socks.append(sock)
        for stage, url in urls.items():
            wait_for(lambda url=url, stage=stage: metric_sum(scrape(url), "facestream_transport_auth_failures_total",
                                                stage=stage) >= 1, 30, f"{stage} to count the refused key")
        seen = len(read_results(tmp_path / "out"))
        wait_for(lambda: len(read_results(tmp_path / "out")) >= seen + 10, 60, "the run to go on")
        time.sleep(1.0)
        for stage, url in urls.items():
            assert metric_sum(scrape(url), "facestream_messages_rejected_total") == 0, f"something reached {stage}"
        for sock in socks:
            sock.close()
    finally:
        ctx.destroy(0)
        stop(proc)
    arrived = {r["seq"] for r in read_results(tmp_path / "out")} & set(intruder_seqs)
    assert not arrived, f"intruders' frames arrived through {[intruder_seqs[s] for s in arrived]}"
    assert "refused peer" in (tmp_path / "log.txt").read_text()
