"""`facestream web` on its own, and the web app as a supervised child of `facestream run` (web.enabled): it writes
run_dir/web.url, logs its URL, is restarted after a crash and stops with the run."""

from __future__ import annotations

import json
import os
import signal
import urllib.error
import urllib.request

import pytest

from ..helpers import cli, kill_tree, make_config, pid_alive, start, stop, wait_for

pytestmark = pytest.mark.slow


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def _url(run_dir) -> str | None:
    p = run_dir / "web.url"
    return p.read_text().strip() if p.is_file() else None


def test_facestream_web_serves_and_writes_its_url(tmp_path):
    cfg = make_config(tmp_path, [{"id": "cam", "uri": "demo"}], web={"port": 0})
    log = tmp_path / "web.log"
    proc = start(cli("web", "--config", str(cfg)), log)
    try:
        url = wait_for(lambda: _url(tmp_path / "run"), 60, "run/web.url")
        assert url.startswith("http://127.0.0.1:")
        status = _get(url + "/api/status")
        assert [s["id"] for s in status["sources"]] == ["cam"] and status["web"]["auth"] is False
        assert [s["stage"] for s in status["stages"]] == ["capture", "preprocess", "inference", "sink"]
        assert not any(s["running"] for s in status["stages"])
        assert f"web: open {url}" in log.read_text()
    finally:
        assert stop(proc) == 0
    assert not (tmp_path / "run" / "web.url").exists()


def test_run_with_web_enabled_supervises_the_web_app(tmp_path):
    cfg = make_config(tmp_path, [{"id": "cam", "uri": "demo", "loop": True, "max_fps": 10, "policy": "latest"}],
                      web={"enabled": True, "port": 0})
    run_dir = tmp_path / "run"
    log = tmp_path / "run.log"
    proc = start(cli("run", str(cfg)), log)
    try:
        url = wait_for(lambda: _url(run_dir), 90, "run/web.url")

        def stages_up():
            stages = _get(url + "/api/status")["stages"]
            return all(s["running"] and s.get("reachable") and s.get("up") for s in stages) and stages

        stages = wait_for(stages_up, 120, "every stage up (pid file, /metrics answering) in /api/status")
        assert all(s["pid"] and pid_alive(s["pid"]) for s in stages), stages
        assert f"web: open {url}" in log.read_text()

        pid = int((run_dir / "web.pid").read_text())
        os.kill(pid, signal.SIGKILL)  # a crash: the supervisor starts it again
        wait_for(lambda: not pid_alive(pid), 10, "the web app to die")
        new_url = wait_for(lambda: _url(run_dir) if (run_dir / "web.pid").is_file() and
                           int((run_dir / "web.pid").read_text()) != pid else None, 60, "a restarted web app")
        assert _get(new_url + "/api/whoami")["user"] == "anonymous"
        new_pid = int((run_dir / "web.pid").read_text())
        assert "supervisor: web exited with signal SIGKILL; restart #1" in log.read_text()
    finally:
        code = stop(proc, timeout=30)
    assert code == 0, log.read_text()[-3000:]
    assert not pid_alive(new_pid)
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(new_url + "/api/whoami", timeout=3)


def test_run_refuses_a_web_app_off_loopback_without_auth(tmp_path):
    cfg = make_config(tmp_path, [{"id": "cam", "uri": "demo"}], web={"enabled": True, "host": "0.0.0.0"})
    proc = start(cli("run", str(cfg)), tmp_path / "log.txt")
    try:
        assert proc.wait(120) == 2
    finally:
        kill_tree(proc)
    text = (tmp_path / "log.txt").read_text()
    assert "facestream: error: web.host 0.0.0.0 is off loopback" in text and "Traceback" not in text
    assert not (tmp_path / "out" / "results.jsonl").exists()


def test_run_stops_with_one_line_when_the_web_port_is_taken(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        cfg = make_config(tmp_path, [{"id": "cam", "uri": "demo", "loop": True}], web={"enabled": True, "port": port})
        proc = start(cli("run", str(cfg)), tmp_path / "log.txt")
        try:
            assert proc.wait(120) == 2
        finally:
            kill_tree(proc)
    text = (tmp_path / "log.txt").read_text()
    assert f"facestream: error: web: web app cannot listen on 127.0.0.1:{port}" in text, text[-2000:]
    assert "Traceback" not in text
