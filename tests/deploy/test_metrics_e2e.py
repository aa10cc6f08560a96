"""The monitoring assets against a real pipeline: `facestream run` on the looping demo clip plus a camera that never
answers, scraped by a real Prometheus started from deploy/prometheus/prometheus.yml (only the target addresses
changed to this run's free ports).

Proves what the static checks cannot: the four stages answer, `honor_labels` gives process metrics a `stage` label
without renaming the series' own one, EVERY panel target and template query of the dashboard returns data (with
$stream as All and as each stream), the image health check accepts real stage endpoints, and the alerts fire for a
camera that never opened, a stage that stops answering and a stage the supervisor restarted, and for nothing else.
"""

from __future__ import annotations

import json
import math
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
from typing import Any

import pytest
import yaml
from deploy_helpers import DASHBOARD, panel_targets, template_api_call, template_queries

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
STAGES = ("capture", "preprocess", "inference", "sink")
PROMETHEUS = shutil.which("prometheus")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(PROMETHEUS is None, reason="prometheus server not installed (Debian package 'prometheus')"),
]

SCRAPE_S = 1
# Grafana's $__rate_interval is max($__interval + scrape interval, 4 x scrape interval): the smallest it can be here.
RATE_INTERVAL = f"{4 * SCRAPE_S}s"


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _api(prom_port: int, path: str, params: dict[str, str]) -> Any:
    url = f"http://127.0.0.1:{prom_port}{path}?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=5) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return body["data"]


def _query(prom_port: int, expr: str) -> list[dict]:
    return _api(prom_port, "/api/v1/query", {"query": expr})["result"]


def _has_data(result: list[dict]) -> bool:
    """At least one series with a number Grafana can draw (a quantile of no observations is NaN: no data)."""
    return any(math.isfinite(float(r["value"][1])) for r in result)


def _stream_regex(stream: str) -> str:
    """A variable value as Grafana puts it into ``=~"..."``: regex-escaped, backslashes doubled for PromQL."""
    return re.escape(stream).replace("\\", "\\\\")


def _check_dashboard(prom_port: int, settle_s: float = 10) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Every template query and every panel target against the running Prometheus, as Grafana sends them.

    A template query is the API call it stands for (``label_values`` -> /api/v1/label/NAME/values). A panel
    target runs with ``$stream`` as "All" (``.*``) and as each value the stream variable offers, and with
    ``$__rate_interval`` as RATE_INTERVAL; it has data when some series has a finite value. What has no data
    is retried for ``settle_s`` (one more scrape), then reported. Returns ({template: failures},
    {"N title": failures} for the N-th target): an empty list means the query returned data.
    """
    dash = json.loads(DASHBOARD.read_text())
    templates: dict[str, list[str]] = {}
    panels: dict[str, list[str]] = {}
    values: dict[str, list[str]] = {}
    deadline = time.monotonic() + settle_s
    while True:
        for name, definition in template_queries(dash):
            path, params = template_api_call(definition)
            data = _api(prom_port, path, params)
            found = [v for v in data if v] if isinstance(data, list) else [r["metric"] for r in data["result"]]
            values[name] = [v for v in found if isinstance(v, str)]
            templates[name] = [] if found else [f"variable {name!r}: no values for {definition} ({path} {params})"]
        for i, (title, expr) in enumerate(panel_targets(dash)):
            failures = []
            for stream in [".*", *map(_stream_regex, values.get("stream", []) if "$stream" in expr else [])]:
                promql = expr.replace("$__rate_interval", RATE_INTERVAL).replace("$stream", stream)
                if not _has_data(_query(prom_port, promql)):
                    failures.append(f"panel {title!r}: no data for {promql}")
            panels[f"{i} {title}"] = failures
        if time.monotonic() > deadline or not any([*templates.values(), *panels.values()]):
            return templates, panels
        time.sleep(1)


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
    *stage_ports, prom_port, closed_port = _free_ports(6)
    ports = dict(zip(STAGES, stage_ports, strict=True))
    config = {
        "sources": [
            {"id": "demo", "uri": "demo", "loop": True, "max_fps": 10, "policy": "latest"},
            # a camera that never answers (nothing listens on the port): real reconnects, a real CameraDown
            {"id": "cam-down", "uri": f"rtsp://127.0.0.1:{closed_port}/none", "open_timeout_s": 1,
             "read_timeout_s": 1, "reconnect_min_s": 0.2, "reconnect_max_s": 1},
        ],
        "transport": {"run_dir": str(tmp_path / "run")},
        "inference": {"gallery": str(tmp_path / "gallery.db"), "models_dir": str(tmp_path / "models")},
        "sink": {"out_dir": str(tmp_path / "out")},
        "metrics": {"host": "127.0.0.1", "ports": ports},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))

    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    prom["global"]["scrape_interval"] = f"{SCRAPE_S}s"
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

    templates, panels = _check_dashboard(prom_port)
    print(f"dashboard: {sum(not f for f in panels.values())} of {len(panels)} panel queries and "
          f"{sum(not f for f in templates.values())} of {len(templates)} template queries return data")
    failures = [f for fs in [*templates.values(), *panels.values()] for f in fs]
    assert not failures, "dashboard queries without data:\n" + "\n".join(failures)
    assert len(panels) >= 40 and templates, "the dashboard lost its queries"
    streams = _api(prom_port, "/api/v1/label/stream/values", {"match[]": "facestream_source_frames_total"})
    assert set(streams) == {"demo", "cam-down"}, streams  # the panels were checked with each as $stream

    health = subprocess.run(
        [sys.executable, str(DEPLOY / "docker" / "healthcheck.py")], capture_output=True, text=True, timeout=30,
        env={"FACESTREAM_HEALTH_PORTS": " ".join(str(p) for p in ctx["ports"].values())})
    assert health.returncode == 0, health.stderr

    # The camera that never opened is down from the start (source_up exists at 0) and keeps reconnecting.
    _wait_for(prom_port, 'increase(facestream_source_reconnects_total{stream="cam-down"}[30s]) > 0', 30, procs)
    _wait_for(prom_port, 'ALERTS{alertname="FacestreamCameraDown", alertstate="firing"}', 30, procs)
    time.sleep(3)  # longer than the rules' `for: 2s`: a false alarm would be firing by now
    firing = [r["metric"] for r in _query(prom_port, 'ALERTS{alertstate="firing"}')]
    assert not [a for a in firing if a["alertname"] == "FacestreamStageDown"], firing
    assert {a["stream"] for a in firing if a["alertname"] == "FacestreamCameraDown"} == {"cam-down"}, firing

    # A stage that stops answering fires FacestreamStageDown for that stage (the alert can fire, #13).
    sink_pid = int((ctx["tmp"] / "run" / "sink.pid").read_text())
    os.kill(sink_pid, signal.SIGSTOP)
    try:
        fired = _wait_for(prom_port, 'ALERTS{alertname="FacestreamStageDown", alertstate="firing"}', 60, procs)
    finally:
        os.kill(sink_pid, signal.SIGCONT)
    assert {r["metric"]["stage"] for r in fired} == {"sink"}, fired
    assert fired[0]["metric"]["severity"] == "critical"

    # A stage killed and restarted by the supervisor fires FacestreamStageRestarting: the counter existed at 0
    # before the crash, so the restarted process's 1 is an increase (a series born at 1 would show none).
    os.kill(int((ctx["tmp"] / "run" / "preprocess.pid").read_text()), signal.SIGKILL)
    fired = _wait_for(prom_port, 'ALERTS{alertname="FacestreamStageRestarting", alertstate="firing"}', 60, procs)
    assert {r["metric"]["stage"] for r in fired} == {"preprocess"}, fired

    assert _stop(ctx["run"], 20) == 0, (ctx["tmp"] / "run.log").read_text()[-3000:]
