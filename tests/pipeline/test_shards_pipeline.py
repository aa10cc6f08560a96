"""Two inference shards as separate `facestream stage` process sets (capture, preprocess, inference each, tcp hops)
and one sink, four looped demo cameras spread by the consistent hash: results of all four streams reach the sink;
a shard's stages take only its streams; killing one shard's inference stops only its cameras (their frames are
counted as dropped on that shard) while the other shard's keep flowing; a restarted inference resumes them."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections import Counter

import pytest

from facestream.pipeline.config import load_config

from .helpers import (
    cli,
    kill_tree,
    make_config,
    metric_sum,
    metrics_url,
    read_results,
    scrape,
    stage_pid,
    start,
    wait_for,
)

pytestmark = pytest.mark.slow
SOURCES = [{"id": f"cam{i}", "uri": "demo", "loop": True, "policy": "latest", "max_fps": 3} for i in range(4)]


def port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def per_stream(out) -> Counter:
    return Counter(r["stream"] for r in read_results(out))


def test_two_shards_one_sink_and_a_dead_shard_leaves_the_other_running(tmp_path):
    sink_hop = {"bind": port()}
    shards = {"shards": ["a", "b"]}
    dirs = {k: tmp_path / k for k in ("sink", "a", "b")}
    for d in dirs.values():
        d.mkdir()
    cfgs = {"sink": make_config(dirs["sink"], SOURCES, transport={"sink": sink_hop}, shard=shards)}
    for k in ("a", "b"):
        hops = {"preprocess": {"bind": port()}, "inference": {"bind": port()}, "sink": sink_hop}
        cfgs[k] = make_config(dirs[k], SOURCES, transport=hops, shard={**shards, "id": k})
    where = load_config(cfgs["a"], environ={}).shard_assignment()
    mine = {k: sorted(s for s, sh in where.items() if sh == k) for k in ("a", "b")}
    assert mine["a"] and mine["b"], where  # the hash spreads these four over both shards

    procs = {}

    def launch(key: str, stage: str) -> None:
        procs[f"{key}-{stage}"] = start(cli("stage", stage, "--config", str(cfgs[key])),
                                        dirs[key] / f"{stage}.log")

    def logs() -> str:
        return "\n".join(f"--- {p.parent.name}/{p.name}\n{p.read_text()[-1200:]}" for p in tmp_path.glob("*/*.log"))

    out = dirs["sink"] / "out"
    try:
        launch("sink", "sink")
        for k in ("a", "b"):
            for stage in ("inference", "preprocess", "capture"):
                launch(k, stage)
        try:
            wait_for(lambda: len(per_stream(out)) == 4 and min(per_stream(out).values()) >= 3, 240,
                     "results of all four streams at the sink")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {per_stream(out)}\n{logs()}") from None

        for k in ("a", "b"):  # each shard's inference took only its own streams, and nothing was rejected
            samples = scrape(metrics_url(dirs[k] / "run", "inference"))
            seen = sorted(s for s in where if metric_sum(samples, "facestream_frames_in_total", stream=s) > 0)
            assert seen == mine[k], (k, seen)
            assert metric_sum(samples, "facestream_messages_rejected_total") == 0

        pid = stage_pid(dirs["a"] / "run", "inference")
        os.kill(pid, signal.SIGKILL)
        procs["a-inference"].wait(10)
        time.sleep(3.0)  # what was in flight lands
        at_kill = per_stream(out)
        pre_a = metrics_url(dirs["a"] / "run", "preprocess")
        dropped_before = metric_sum(scrape(pre_a), "facestream_frames_dropped_total", stage="preprocess")
        time.sleep(10.0)
        later = per_stream(out)
        for s in mine["b"]:
            assert later[s] >= at_kill[s] + 5, (s, at_kill, later)  # shard b is unaffected
        for s in mine["a"]:
            assert later[s] == at_kill[s], (s, at_kill, later)  # shard a's cameras stopped with their inference
        dropped_after = metric_sum(scrape(pre_a), "facestream_frames_dropped_total", stage="preprocess")
        assert dropped_after > dropped_before  # shard a counts its cameras' frames as dropped

        launch("a", "inference")  # the restarted shard resumes its cameras
        wait_for(lambda: all(per_stream(out)[s] >= later[s] + 3 for s in mine["a"]), 120,
                 "shard a's streams to flow again after its inference restarted")
        assert procs["sink-sink"].poll() is None, logs()
    finally:
        for p in procs.values():
            kill_tree(p)
