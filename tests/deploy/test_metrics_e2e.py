"""The monitoring assets against a real pipeline: `facestream run` on the demo clip, scraped by a real Prometheus
started from deploy/prometheus/prometheus.yml (only the target addresses changed to this run's free ports).

Proves what the static checks cannot: the four stages answer, `honor_labels` gives process metrics a `stage` label
without renaming the series' own one, the dashboard's queries return data for the metrics the pipeline exports
today, and the image health check accepts real stage endpoints.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
STAGES = ("capture", "preprocess", "inference", "sink")
PROMETHEUS = shutil.which("prometheus")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(PROMETHEUS is None, reason="prometheus server not installed (Debian package 'prometheus')"),
]

# Dashboard queries built only from these metrics must return data while the demo runs (the rest need cameras
# that fail, faces in a gallery or TensorRT).
LIVE_METRICS = {
    "up", "facestream_frames_in_total", "facestream_frames_out_total", "facestream_capture_to_stage_seconds",
    "facestream_stage_processing_seconds", "facestream_queue_depth", "facestream_source_frames_total",
    "facestream_source_up", "facestream_build_info", "facestream_stage_up", "facestream_peer_up",
    "facestream_faces_detected_total", "facestream_sink_events_written_total", "process_resident_memory_bytes",
    "process_open_fds",
}


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _query(prom_port: int, expr: str) -> list[dict]:
    url = f"http://127.0.0.1:{prom_port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return body["data"]["result"]


def _wait_for(prom_port: int, expr: str, timeout_s: float, procs: list[subprocess.Popen]) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for p in procs:
            assert p.poll() is None, f"{p.args[:3]} exited early with {p.returncode}"
        try:
            result = _query(prom_port, expr)
            if result:
                return result
        except OSError:
            pass
        time.sleep(1)
    pytest.fail(f"no data for {expr!r} within {timeout_s} s")


def _stop(proc: subprocess.Popen, timeout_s: float) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return -9


@pytest.fixture
def pipeline_and_prometheus(tmp_path):
    pytest.importorskip("facestream.pipeline.config", reason="pipeline not importable")
    *stage_ports, prom_port = _free_ports(5)
    ports = dict(zip(STAGES, stage_ports, strict=True))
    config = {
        "sources": [{"id": "demo", "uri": "demo", "loop": True, "max_fps": 10, "policy": "latest"}],
        "transport": {"run_dir": str(tmp_path / "run")},
        "inference": {"gallery": str(tmp_path / "gallery.db"), "models_dir": str(tmp_path / "models")},
        "sink": {"out_dir": str(tmp_path / "out")},
        "metrics": {"host": "127.0.0.1", "ports": ports},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))

    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    prom["global"]["scrape_interval"] = "1s"
    prom["global"]["evaluation_interval"] = "1s"
    # The real alert rules with every `for:` cut to 2 s, so an alert can fire (and a healthy run can be seen not
    # to fire) within the test; the expressions, labels and annotations are those of deploy/prometheus/alerts.yml.
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "2s"
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(rules))
    prom["rule_files"] = [str(tmp_path / "alerts.yml")]
    (job,) = [j for j in prom["scrape_configs"] if j["job_name"] == "facestream"]
    for static in job["static_configs"]:
        static["targets"] = [f"127.0.0.1:{ports[static['labels']['stage']]}"]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(prom))

    env = {**os.environ, "FACESTREAM_MODELS": str(tmp_path / "models"),
           "FACESTREAM_GALLERY": str(tmp_path / "gallery.db"), "FACESTREAM_ENGINES": str(tmp_path / "engines")}
    run_log = open(tmp_path / "run.log", "w")  # noqa: SIM115 (closed below)
    prom_log = open(tmp_path / "prometheus.log", "w")  # noqa: SIM115
    run = subprocess.Popen([sys.executable, "-m", "facestream.pipeline.cli", "run", str(tmp_path / "config.yaml")],
                           cwd=ROOT, env=env, stdout=run_log, stderr=subprocess.STDOUT)
    prometheus = subprocess.Popen(
        [PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=prom_log, stderr=subprocess.STDOUT)
    try:
        yield {"run": run, "prometheus": prometheus, "prom_port": prom_port, "ports": ports, "tmp": tmp_path}
    finally:
        _stop(prometheus, 10)
        _stop(run, 20)
        run_log.close()
        prom_log.close()


def test_real_stages_scraped_with_stage_labels_and_dashboard_queries_return_data(pipeline_and_prometheus):
    ctx = pipeline_and_prometheus
    prom_port, procs = ctx["prom_port"], [ctx["run"], ctx["prometheus"]]
    _wait_for(prom_port, 'count(up{job="facestream"} == 1) == 4', 120, procs)
    _wait_for(prom_port, 'sum(rate(facestream_frames_out_total{stage="sink"}[10s])) > 0', 120, procs)
    time.sleep(3)  # a few more scrapes, so that rate() has two points everywhere

    up = {r["metric"]["stage"]: r["value"][1] for r in _query(prom_port, 'up{job="facestream"}')}
    assert up == dict.fromkeys(STAGES, "1")
    # honor_labels: the target's stage label reaches process metrics ...
    rss = _query(prom_port, 'process_resident_memory_bytes{job="facestream"}')
    assert sorted(r["metric"]["stage"] for r in rss) == sorted(STAGES)
    # ... and no series' own stage label was renamed
    assert _query(prom_port, '{job="facestream", exported_stage!=""}') == []
    frames_in = _query(prom_port, 'facestream_frames_in_total{job="facestream"}')
    assert {r["metric"]["stage"] for r in frames_in} == set(STAGES)

    dash = json.loads((DEPLOY / "grafana" / "dashboards" / "facestream.json").read_text())
    checked = 0
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            names = set(re.findall(r"\b((?:facestream|process)_[a-z0-9_]+?)(?:_bucket|_sum|_count)?\b", expr))
            names |= {"up"} if re.search(r"\bup\{", expr) else set()
            if not names or not names <= LIVE_METRICS:
                continue
            expr = expr.replace("$__rate_interval", "10s").replace("$stream", ".*")
            assert _query(prom_port, expr), f"panel {panel['title']!r}: no data for {expr}"
            checked += 1
    assert checked >= 12, f"only {checked} dashboard queries checked"

    health = subprocess.run(
        [sys.executable, str(DEPLOY / "docker" / "healthcheck.py")], capture_output=True, text=True, timeout=30,
        env={"FACESTREAM_HEALTH_PORTS": " ".join(str(p) for p in ctx["ports"].values())})
    assert health.returncode == 0, health.stderr

    time.sleep(3)  # longer than the rules' `for: 2s`: a false alarm would be firing by now
    firing = [r["metric"] for r in _query(prom_port, 'ALERTS{alertstate="firing"}')]
    assert not [a for a in firing if a["alertname"] in ("FacestreamStageDown", "FacestreamCameraDown")], firing

    # A stage that stops answering fires FacestreamStageDown for that stage (the alert can fire, #13).
    sink_pid = int((ctx["tmp"] / "run" / "sink.pid").read_text())
    os.kill(sink_pid, signal.SIGSTOP)
    try:
        fired = _wait_for(prom_port, 'ALERTS{alertname="FacestreamStageDown", alertstate="firing"}', 60, procs)
    finally:
        os.kill(sink_pid, signal.SIGCONT)
    assert {r["metric"]["stage"] for r in fired} == {"sink"}, fired
    assert fired[0]["metric"]["severity"] == "critical"

    assert _stop(ctx["run"], 20) == 0, (ctx["tmp"] / "run.log").read_text()[-3000:]
