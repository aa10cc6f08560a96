"""Fuzzing through running stages (#13): wire-valid headers whose meta/records are junk, sent into the real
PULL socket of each stage of a running `facestream run`. Every stage must keep its process (pid unchanged),
count the rejections on its /metrics, and still pass a good frame sent after the junk through to the sink.

Deterministic and bounded: hypothesis is derandomized with a fixed number of examples per stage, and the
whole test takes well under a minute (most of it the pipeline's start).
"""

from __future__ import annotations

import math

import msgpack
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facestream.pipeline.wire import (
    WireError,
    decode,
)

from .helpers import (
    UPSTREAM,
    cli,
    good_message,
    make_config,
    metric_sum,
    metrics_url,
    pid_alive,
    read_results,
    run_id,
    scrape,
    stage_pid,
    start,
    stop,
    tcp_hops,
    wait_for,
)

pytestmark = pytest.mark.slow

EXAMPLES = 40  # per stage
NASTY_TEXT = ["../../etc/passwd", "/tmp/x", "a\x00b", "C:\\x", "x" * 5000, "e-1\n", "", "..", "🙂" * 50, "%s%n"]

scalar = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(1 << 63), max_value=(1 << 64) - 1),
    st.sampled_from([0, -1, 1 << 62, (1 << 64) - 1, -(1 << 63)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -0.0]),
    st.text(max_size=40), st.sampled_from(NASTY_TEXT), st.binary(max_size=40),
)
junk = st.recursive(scalar, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner,
                                                                                         max_size=4), max_leaves=20)
FACE = {"box": [10.0, 10.0, 50.0, 60.0], "score": 1.0, "quality": 0.5, "landmarks": [[20.0, 30.0]] * 5}
EVENT = {"event_id": "e-0123456789abcdef", "kind": "track_started", "stream_id": "cam", "track_id": 1,
         "track_ref": "t-0123456789abcdef", "seq": 0, "ts_ns": 1, "first_ts_ns": 1}


def _spoiled(record: dict) -> st.SearchStrategy:
    """A near-valid record with one field replaced by junk (or one junk field added)."""
    return st.tuples(st.sampled_from([*record, "extra"]), junk).map(lambda kv: {**record, kv[0]: kv[1]})


META_KEYS = ["policy", "epoch", "scale", "src_shape", "faces", "events", "frames_total", "error"]
meta = st.one_of(
    st.dictionaries(st.sampled_from(META_KEYS) | st.text(max_size=12), junk, min_size=1, max_size=4),
    st.lists(_spoiled(FACE), min_size=1, max_size=3).map(lambda faces: {"faces": faces, "scale": 1.0}),
    st.lists(_spoiled(EVENT), min_size=1, max_size=3).map(lambda events: {"events": events, "faces": []}),
    junk,  # meta that is not even a map
)
item_fields = st.fixed_dictionaries({"meta": meta}, optional={"stages": junk, "drops": junk, "seq": junk})


def _header(mtype: str, sender: str, fields: dict, run: str) -> bytes:
    """Carrying the run's id: what the protocol lets through must reach the stage's own handling of it."""
    item = {"stream": "cam", "seq": 7, "ts": [1, 1], "payload": {"enc": "none"}, **fields}
    return msgpack.packb({"v": 1, "t": mtype, "from": sender, "sent": 1, "run": run, "items": [item]},
                         use_bin_type=True)


def _rejected(url: str) -> float:
    try:
        return metric_sum(scrape(url), "facestream_messages_rejected_total")
    except OSError:  # the stage is gone (the pid check says so)
        return -math.inf


def _alive(run_dir, pids: dict[str, int]) -> None:
    for s, pid in pids.items():
        assert stage_pid(run_dir, s) == pid and pid_alive(pid), f"stage {s} died (pid {pid} gone)"


def _send_junk(sock: zmq.Socket, sender: str, mtype: str, run: str) -> int:
    """Send EXAMPLES junk messages (the same ones on every run); returns how many the protocol rejects."""
    rejected = []

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(fields=item_fields)
    def send(fields):
        head = _header(mtype, sender, fields, run)
        try:
            decode([head])
        except WireError:
            rejected.append(1)  # the receiver must reject what the protocol rejects
        sock.send_multipart([head])

    send()
    return len(rejected)


def test_junk_meta_into_every_running_stage_is_counted_and_the_stage_lives_on(tmp_path):
    hops = tcp_hops()
    cfg = make_config(tmp_path, [{"id": "cam", "uri": "demo", "loop": True, "policy": "latest", "max_fps": 4}],
                      transport={**hops, "allow_plain_tcp": True})
    run_dir, out = tmp_path / "run", tmp_path / "out"
    proc = start(cli("run", str(cfg)), tmp_path / "log.txt")
    ctx = zmq.Context()
    try:
        wait_for(lambda: len(read_results(out)) >= 2, 90, "the first results")
        urls = {s: wait_for(lambda s=s: metrics_url(run_dir, s), 30, f"{s} metrics") for s in UPSTREAM}
        pids = {s: stage_pid(run_dir, s) for s in UPSTREAM}
        assert all(pids.values()), pids
        for n, (stage, (sender, mtype)) in enumerate(UPSTREAM.items()):
            sock = ctx.socket(zmq.PUSH)
            sock.linger, sock.sndtimeo = 1000, 5000
            sock.connect(hops[stage]["bind"])
            assert sock.poll(10_000, zmq.POLLOUT), f"could not connect to {stage}'s socket"
            before = _rejected(urls[stage])
            expected = _send_junk(sock, sender, mtype, run_id(run_dir))
            assert expected >= EXAMPLES // 2, "the generator must mostly produce junk"
            wait_for(lambda stage=stage, b=before, e=expected: _alive(run_dir, pids) or _rejected(urls[stage]) - b >= e, 20,
                     f"{stage} to count {expected} rejections")
            seq = 1_000_000 + n
            sock.send_multipart(good_message(stage, seq, run_id(run_dir)))
            wait_for(lambda seq=seq: any(r["seq"] == seq for r in read_results(out)), 30,
                     f"a good message sent to {stage} after the junk to come out of the sink")
            sock.close()
            _alive(run_dir, pids)
    finally:
        ctx.destroy(0)
        stop(proc)
