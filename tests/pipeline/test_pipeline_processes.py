"""The pipeline as real processes over real ZeroMQ sockets: ipc and tcp, crashes, SIGTERM, hostile input."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import msgpack
import pytest
import zmq

from .helpers import (
    cli,
    kill_tree,
    make_config,
    metric_sum,
    metrics_url,
    pid_alive,
    read_results,
    read_summary,
    scrape,
    stage_pid,
    start,
    stop,
    tcp_hops,
    wait_for,
    write_video,
)

pytestmark = pytest.mark.slow
FRAMES = 120


def _check_complete(out, frames: int) -> list[dict]:
    results = read_results(out)
    seqs = [r["seq"] for r in results]
    assert seqs == list(range(frames)), f"lossless run must deliver every frame in order; got {len(seqs)} results"
    s = read_summary(out)["streams"]["cam"]
    assert s["frames_total"] == frames and s["dropped_total"] == 0 and s["lost"] == 0, s
    return results


def test_video_through_four_processes_over_ipc_is_lossless_and_ordered(tmp_path):
    video = write_video(tmp_path / "clip.mp4", FRAMES)
    cfg = make_config(tmp_path, [{"id": "cam", "uri": str(video)}])
    proc = start(cli("run", str(cfg)), tmp_path / "log.txt")
    try:
        assert proc.wait(180) == 0, (tmp_path / "log.txt").read_text()[-3000:]
    finally:
        kill_tree(proc)
    results = _check_complete(tmp_path / "out", FRAMES)
    with_face = sum(1 for r in results if r["faces"])
    assert with_face >= 0.8 * FRAMES, f"HOG found a face in only {with_face}/{FRAMES} frames"
    r = results[10]
    assert set(r["stages"]) == {"capture", "preprocess", "inference", "sink"}
    assert r["capture_wall_ns"] <= r["stages"]["preprocess"][0] <= r["stages"]["inference"][0] <= r["stages"]["sink"][0]


def test_same_video_over_tcp_with_separately_started_stages(tmp_path):
    video = write_video(tmp_path / "clip.mp4", FRAMES)
    hops = tcp_hops()
    cfg = make_config(tmp_path, [{"id": "cam", "uri": str(video)}], transport=hops)
    procs = {name: start(cli("stage", name, "--config", str(cfg)), tmp_path / f"{name}.log")
             for name in ("sink", "inference", "preprocess", "capture")}
    try:
        for name in ("sink", "inference", "preprocess", "capture"):
            try:
                code = procs[name].wait(180)
            except subprocess.TimeoutExpired:
                code = "still running after 180 s"
            logs = "\n".join(f"--- {n}.log\n" + (tmp_path / f"{n}.log").read_text()[-1500:] for n in procs)
            assert code == 0, f"{name}: {code}\n{logs}"
    finally:
        for p in procs.values():
            kill_tree(p)
    _check_complete(tmp_path / "out", FRAMES)


def test_killed_inference_stage_is_restarted_and_frames_flow_again(tmp_path):
    frames = 200
    video = write_video(tmp_path / "clip.mp4", frames)
    cfg = make_config(tmp_path, [{"id": "cam", "uri": str(video)}], inference={"throttle_ms": 40})
    log = tmp_path / "log.txt"
    proc = start(cli("run", str(cfg)), log)
    out, run_dir = tmp_path / "out", tmp_path / "run"
    try:
        wait_for(lambda: len(read_results(out)) >= 20, 120, "20 results")
        first_pid = stage_pid(run_dir, "inference")
        assert first_pid
        os.kill(first_pid, signal.SIGKILL)
        killed_at = len(read_results(out))
        wait_for(lambda: (stage_pid(run_dir, "inference") or first_pid) != first_pid, 30, "a new inference process")
        assert proc.wait(240) == 0, log.read_text()[-3000:]
    finally:
        kill_tree(proc)
    results = read_results(out)
    assert len(results) > killed_at + 20, "frames must flow again after the restart"
    assert "restart #1" in log.read_text()
    s = read_summary(out)["streams"]["cam"]
    # Every frame is accounted for: a result, a counted drop, or counted as lost in flight.
    assert s["results"] + s["dropped_total"] + s["lost"] == frames, s
    assert s["results"] == len(results)


def test_sigterm_stops_everything_within_5_s_and_leaves_no_process(tmp_path):
    cfg = make_config(tmp_path, [{"id": "cam", "uri": "demo", "loop": True, "policy": "latest", "max_fps": 15}])
    proc = start(cli("run", str(cfg)), tmp_path / "log.txt")
    run_dir = tmp_path / "run"
    try:
        wait_for(lambda: len(read_results(tmp_path / "out")) >= 5, 90, "results from the looping demo")
        pids = [stage_pid(run_dir, s) for s in ("capture", "preprocess", "inference", "sink")]
        assert all(pids), pids
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(10)
        elapsed = time.monotonic() - t0
    finally:
        kill_tree(proc)
    assert code == 0, (tmp_path / "log.txt").read_text()[-2000:]
    assert elapsed < 5.5, f"took {elapsed:.1f} s to stop"
    left = [p for p in pids if pid_alive(p)]
    assert not left, f"processes left behind: {left}"


BAD_MESSAGES = [
    [b"\x00\x01garbage"],
    [msgpack.packb({"v": 99, "t": "frame", "items": []})],
    [msgpack.packb({"v": 1, "t": "frame", "items": [{"stream": "cam", "seq": 1, "ts": [1, 1], "payload": {
        "enc": "raw", "shape": [16384, 16384, 3], "dtype": "uint8", "nbytes": 805306368}}]})],
    [msgpack.packb({"v": 1, "t": "frame", "items": [{"stream": "cam", "seq": 1, "ts": [1, 1], "payload": {
        "enc": "raw", "shape": [4, 4, 3], "dtype": "uint8", "nbytes": 48}}]}), b"short"],
    [msgpack.packb({"v": 1, "t": "frame", "items": [{"stream": "cam", "seq": -5, "ts": [1, 1]}]})],
    [msgpack.packb({"v": 1, "t": "batch", "items": [{"stream": "cam", "seq": 1, "ts": [1, 1], "payload": {
        "enc": "raw", "shape": [2, 2], "dtype": "complex128", "nbytes": 64}}]}), b"x" * 64],
]


def test_malformed_messages_are_rejected_and_counted_by_every_stage(tmp_path):
    cfg = make_config(tmp_path, [{"id": "cam", "uri": "demo", "loop": True, "policy": "latest", "max_fps": 15}])
    proc = start(cli("run", str(cfg)), tmp_path / "log.txt")
    run_dir, out = tmp_path / "run", tmp_path / "out"
    ctx = zmq.Context()
    try:
        wait_for(lambda: len(read_results(out)) >= 3, 90, "first results")
        for stage in ("preprocess", "inference", "sink"):
            url = wait_for(lambda s=stage: metrics_url(run_dir, s), 30, f"{stage} metrics url")
            push = ctx.socket(zmq.PUSH)
            push.setsockopt(zmq.LINGER, 1000)
            push.connect(f"ipc://{run_dir / (stage + '.ipc')}")
            for parts in BAD_MESSAGES:
                push.send_multipart(parts)
            wait_for(lambda u=url: metric_sum(scrape(u), "facestream_messages_rejected_total") >= len(BAD_MESSAGES),
                     20, f"{stage} to count {len(BAD_MESSAGES)} rejections")
            push.close()
        before = len(read_results(out))
        wait_for(lambda: len(read_results(out)) >= before + 5, 30, "frames to keep flowing after the garbage")
        assert proc.poll() is None, "the pipeline must survive hostile input"
        sink_samples = scrape(metrics_url(run_dir, "sink"))
        reasons = {dict(lab).get("reason") for (n, lab) in sink_samples if n == "facestream_messages_rejected_total"}
        assert {"bad_header", "bad_version", "oversized", "truncated", "bad_field", "bad_dtype"} <= reasons, reasons
    finally:
        ctx.term()
        stop(proc)
