"""Faults the pipeline survives, with real processes: killed stages, a slow stage, an unwritable output."""

from __future__ import annotations

import os
import signal
import statistics

import pytest

from .helpers import (
    cli,
    kill_tree,
    make_config,
    metric_sum,
    metrics_url,
    read_results,
    read_summary,
    scrape,
    stage_pid,
    start,
    stop,
    wait_for,
    write_video,
)

pytestmark = pytest.mark.slow
LIVE_DEMO = [{"id": "cam", "uri": "demo", "loop": True, "policy": "latest", "max_fps": 15}]


@pytest.mark.parametrize("stage", ["capture", "preprocess", "sink"])
def test_sigkilled_stage_is_restarted_and_results_resume(tmp_path, stage):
    cfg = make_config(tmp_path, LIVE_DEMO)
    proc = start(cli("run", str(cfg)), tmp_path / "log.txt")
    out, run_dir = tmp_path / "out", tmp_path / "run"
    try:
        wait_for(lambda: len(read_results(out)) >= 5, 90, "first results")
        pid = stage_pid(run_dir, stage)
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: (stage_pid(run_dir, stage) or pid) != pid, 30, f"a new {stage} process")
        after = len(read_results(out))
        wait_for(lambda: len(read_results(out)) >= after + 5, 60, "results after the restart")
        assert proc.poll() is None
    finally:
        code = stop(proc)
    assert code == 0
    log = (tmp_path / "log.txt").read_text()
    assert f"{stage} exited with signal SIGKILL; restart #1" in log


def test_slow_inference_keeps_live_latency_bounded_and_counts_drops(tmp_path):
    cfg = make_config(tmp_path, [{"id": "cam", "uri": "demo", "loop": True, "policy": "latest", "max_fps": 25}],
                      inference={"throttle_ms": 250})
    proc = start(cli("run", str(cfg)), tmp_path / "log.txt")
    out, run_dir = tmp_path / "out", tmp_path / "run"
    try:
        wait_for(lambda: len(read_results(out)) >= 30, 120, "30 results from the throttled pipeline")
        urls = {s: metrics_url(run_dir, s) for s in ("capture", "preprocess", "inference")}
        dropped = sum(metric_sum(scrape(u), "facestream_frames_dropped_total") for u in urls.values() if u)
    finally:
        stop(proc)
    lat = [r["latency_ms"] for r in read_results(out)][5:]
    third = len(lat) // 3
    early, late = statistics.median(lat[:third]), statistics.median(lat[-third:])
    assert max(lat) < 3000, f"capture-to-result latency must stay bounded, max {max(lat):.0f} ms"
    assert late < early * 1.5 + 300, f"latency grew from {early:.0f} to {late:.0f} ms: a queue is building up"
    assert dropped > 0, "a source faster than inference must drop (and count) frames"


def test_slow_inference_on_a_file_processes_every_frame(tmp_path):
    frames = 60
    video = write_video(tmp_path / "clip.mp4", frames)
    cfg = make_config(tmp_path, [{"id": "cam", "uri": str(video)}], inference={"throttle_ms": 60})
    proc = start(cli("run", str(cfg)), tmp_path / "log.txt")
    try:
        assert proc.wait(180) == 0
    finally:
        kill_tree(proc)
    s = read_summary(tmp_path / "out")["streams"]["cam"]
    assert s["results"] == frames and s["dropped_total"] == 0 and s["lost"] == 0, s


def test_disk_full_sink_output_is_counted_and_the_pipeline_keeps_running(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    os.symlink("/dev/full", out / "results.jsonl")  # every write fails with ENOSPC, as on a full disk
    cfg = make_config(tmp_path, LIVE_DEMO, sink={"out_dir": str(out), "pub": "ipc://" + str(tmp_path / "pub.ipc")})
    import zmq

    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect("ipc://" + str(tmp_path / "pub.ipc"))
    proc = start(cli("run", str(cfg)), tmp_path / "log.txt")
    try:
        url = wait_for(lambda: metrics_url(tmp_path / "run", "sink"), 60, "sink metrics")
        wait_for(lambda: metric_sum(scrape(url), "facestream_sink_write_errors_total", reason="disk_full") >= 5, 90,
                 "write errors to be counted")
        # Results still flow to the other outputs.
        assert sub.poll(20000), "the PUB feed must keep publishing while the file cannot be written"
        assert proc.poll() is None
    finally:
        sub.close()
        ctx.term()
        code = stop(proc)
    assert code == 0
    log = (tmp_path / "log.txt").read_text()
    assert log.count("cannot write") == 1, "the failure is logged once, not per record"
