"""Two runs on one host: each default run gets its own run directory and completes with every frame; a run
started on a run directory another run holds is refused in one line, and the first run is untouched."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest

from facestream.errors import FacestreamError
from facestream.pipeline.run_dir import StageLock, secure_dir

from .helpers import (
    cli,
    good_message,
    kill_tree,
    make_config,
    metric_sum,
    metrics_url,
    read_results,
    read_summary,
    run_id,
    scrape,
    start,
    stop,
    tcp_hops,
    wait_for,
)

pytestmark = pytest.mark.slow
NO_PORTS = "{capture: 0, preprocess: 0, inference: 0, sink: 0}"


def _env(tmp_path, xdg: Path | None = None, **extra):
    return {"XDG_RUNTIME_DIR": str(xdg or tmp_path / "xdg"), "FACESTREAM__METRICS__PORTS": NO_PORTS,
            "FACESTREAM_MODELS": str(tmp_path / "models"), **extra}


def test_two_default_runs_on_one_host_both_complete_with_every_frame(tmp_path):
    # A short runtime dir, as /run/user/UID is: ipc socket paths must stay under ~100 characters.
    xdg = Path(tempfile.mkdtemp(prefix="fs-xdg-"))
    procs = []
    for k in (1, 2):
        env = _env(tmp_path, xdg, FACESTREAM_GALLERY=str(tmp_path / f"g{k}.db"))
        procs.append(start(cli("run", "--out", str(tmp_path / f"out{k}")), tmp_path / f"log{k}.txt", env=env))
    try:
        for k, p in enumerate(procs, 1):
            assert p.wait(400) == 0, (tmp_path / f"log{k}.txt").read_text()[-3000:]
    finally:
        for p in procs:
            kill_tree(p)
    for k in (1, 2):
        s = read_summary(tmp_path / f"out{k}")["streams"]["demo"]
        assert s["results"] == s["frames_total"] > 100 and s["lost"] == 0 and s["dropped_total"] == 0, s
        assert "new epoch" not in (tmp_path / f"log{k}.txt").read_text()
    # Each run removed its own directory under the private base when it finished.
    base = xdg / "facestream"
    assert stat.S_IMODE(os.stat(base).st_mode) == 0o700
    assert not list(base.glob("run-*"))


def test_a_second_run_on_a_held_run_dir_is_refused_in_one_line(tmp_path):
    run_dir = secure_dir(tmp_path / "run")
    lock = StageLock(run_dir, "run")  # what a running supervisor holds
    try:
        p = start(cli("run", "--out", str(tmp_path / "out"), "--set", f"transport.run_dir={run_dir}"),
                  tmp_path / "log.txt", env=_env(tmp_path))
        assert p.wait(120) == 2
        err = (tmp_path / "log.txt").read_text().strip().splitlines()[-1]
        assert err.startswith("facestream: error: another facestream run") and "transport.run_dir" in err
        assert "Traceback" not in (tmp_path / "log.txt").read_text()
    finally:
        lock.release()


def test_a_run_dir_owned_by_someone_else_or_a_symlink_is_refused(tmp_path, monkeypatch):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(FacestreamError, match="not a plain directory"):
        secure_dir(tmp_path / "link")
    theirs = tmp_path / "theirs"  # e.g. /tmp/facestream-<uid> made first by another user on a shared /tmp
    theirs.mkdir(mode=0o700)
    if os.geteuid() == 0:
        os.chown(theirs, 65534, 65534)
    else:  # not root: the directory is ours, so this process pretends to be someone else
        other = os.getuid() + 1
        monkeypatch.setattr(os, "getuid", lambda: other)
    with pytest.raises(FacestreamError, match=r"transport.run_dir .*theirs belongs to uid \d+, not to this user"):
        secure_dir(theirs)
    monkeypatch.undo()
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o777)
    os.chmod(loose, 0o777)
    secure_dir(loose)
    assert stat.S_IMODE(os.stat(loose).st_mode) == 0o700


def test_a_stage_that_cannot_run_as_configured_stops_the_run_instead_of_restarting(tmp_path):
    """An ipc path over the socket limit is a config error: one line from the stage, exit 2, no restart loop."""
    long_dir = tmp_path / ("x" * 90)
    p = start(cli("run", "--out", str(tmp_path / "out"), "--set", f"transport.run_dir={long_dir}"),
              tmp_path / "log.txt", env=_env(tmp_path))
    try:
        assert p.wait(120) == 2
    finally:
        kill_tree(p)
    log = (tmp_path / "log.txt").read_text()
    assert "ipc path too long" in log and "cannot run as configured" in log
    assert "restart #" not in log and "Traceback" not in log


def test_a_running_stage_takes_no_message_of_another_run(tmp_path):
    """What a stage of another run sends into this run's socket (a second run, a stale process on a reused
    run_dir) is rejected as other_run and never comes out; the same frame with this run's id does."""
    import zmq

    hops = tcp_hops()
    cfg = make_config(tmp_path, [{"id": "cam", "uri": "demo", "loop": True, "policy": "latest", "max_fps": 4}],
                      transport=hops)
    run_dir, out = tmp_path / "run", tmp_path / "out"
    proc = start(cli("run", str(cfg)), tmp_path / "log.txt")
    ctx = zmq.Context()
    try:
        wait_for(lambda: len(read_results(out)) >= 2, 90, "the first results")
        ours = run_id(run_dir)
        assert len(ours) == 16 and stat.S_IMODE(os.stat(run_dir / "run.id").st_mode) == 0o600
        url = wait_for(lambda: metrics_url(run_dir, "preprocess"), 30, "preprocess metrics")
        sock = ctx.socket(zmq.PUSH)
        sock.linger, sock.sndtimeo = 1000, 5000
        sock.connect(hops["preprocess"]["bind"])
        assert sock.poll(10_000, zmq.POLLOUT)
        for seq, run in ((3_000_000, "0123456789abcdef"), (3_000_001, "")):
            sock.send_multipart(good_message("preprocess", seq, run))
        wait_for(lambda: metric_sum(scrape(url), "facestream_messages_rejected_total", reason="other_run") >= 2, 20,
                 "preprocess to reject both messages of another run")
        sock.send_multipart(good_message("preprocess", 3_000_002, ours))
        wait_for(lambda: any(r["seq"] == 3_000_002 for r in read_results(out)), 30, "this run's frame to come out")
        sock.close()
    finally:
        ctx.destroy(0)
        stop(proc)
    assert not {r["seq"] for r in read_results(out)} & {3_000_000, 3_000_001}, "another run's frame came out"
