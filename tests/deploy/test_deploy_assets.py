"""Deployment assets stay consistent with each other and with the metrics the code exports.

Every YAML/JSON file in deploy/ parses; the dashboard and the alerts use only metrics documented in
docs/metrics.md; docs/metrics.md lists every metric of the spec and every metric the packages register;
Prometheus scrapes the four stage ports; promtool validates the config, the rules, the alert unit tests and every
dashboard query; compose, Kubernetes, systemd and the Dockerfiles point at files and paths that exist.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import json
import re
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "facestream.json"
PROMETHEUS = DEPLOY / "prometheus"
COMPOSE = DEPLOY / "compose"
STAGE_PORTS = {"capture": 9101, "preprocess": 9102, "inference": 9103, "sink": 9104}
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian package 'prometheus' provides /usr/bin/promtool)"
)

# The metrics the spec (issue 2 and the observability brief) promises: name -> (type, labels).
SPEC_METRICS: dict[str, tuple[str, frozenset[str]]] = {
    name: (kind, frozenset(labels.split(",")) if labels else frozenset())
    for name, kind, labels in [
        ("facestream_frames_in_total", "counter", "stage,stream"),
        ("facestream_frames_out_total", "counter", "stage,stream"),
        ("facestream_frames_dropped_total", "counter", "stage,stream,reason"),
        ("facestream_stage_processing_seconds", "histogram", "stage"),
        ("facestream_capture_to_stage_seconds", "histogram", "stage"),
        ("facestream_queue_depth", "gauge", "stage"),
        ("facestream_messages_rejected_total", "counter", "stage,reason"),
        ("facestream_peer_up", "gauge", "stage,peer"),
        ("facestream_heartbeats_missed_total", "counter", "stage,peer"),
        ("facestream_stage_restarts_total", "counter", "stage"),
        ("facestream_stage_up", "gauge", "stage"),
        ("facestream_source_frames_total", "counter", "stream"),
        ("facestream_source_reconnects_total", "counter", "stream"),
        ("facestream_source_stalls_total", "counter", "stream"),
        ("facestream_source_decode_errors_total", "counter", "stream"),
        ("facestream_source_up", "gauge", "stream"),
        ("facestream_faces_detected_total", "counter", "stream"),
        ("facestream_faces_identified_total", "counter", "stream,kind"),
        ("facestream_match_score", "histogram", ""),
        ("facestream_gallery_size", "gauge", ""),
        ("facestream_embeddings_computed_total", "counter", ""),
        ("facestream_embeddings_saved_total", "counter", ""),
        ("facestream_tracks_active", "gauge", "stream"),
        ("facestream_engine_infer_seconds", "histogram", "model,backend"),
        ("facestream_engine_backend_info", "gauge", "model,backend,reason"),
        ("facestream_engine_build_seconds", "histogram", "model"),
        ("facestream_sink_events_written_total", "counter", "kind"),
        ("facestream_sink_write_errors_total", "counter", "reason"),
        ("facestream_transport_auth_failures_total", "counter", "stage"),
        ("facestream_build_info", "gauge", "version"),
        ("process_resident_memory_bytes", "gauge", ""),
        ("process_open_fds", "gauge", ""),
    ]
}

# What the dashboard must show (the brief's panel list), as the metrics those panels need.
DASHBOARD_MUST_USE = {
    "facestream_frames_in_total", "facestream_frames_out_total", "facestream_frames_dropped_total",
    "facestream_capture_to_stage_seconds", "facestream_stage_processing_seconds", "facestream_queue_depth",
    "facestream_stage_restarts_total", "facestream_peer_up", "facestream_source_reconnects_total",
    "facestream_source_stalls_total", "facestream_source_decode_errors_total", "facestream_faces_identified_total",
    "facestream_match_score", "facestream_gallery_size", "facestream_embeddings_computed_total",
    "facestream_embeddings_saved_total", "facestream_engine_infer_seconds", "process_resident_memory_bytes",
    "process_open_fds",
}

METRIC_TOKEN = re.compile(r"\b((?:facestream|process)_[a-z0-9_]+)\b")
GRAFANA_VARS = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h", "$stream": ".*"}


# --- helpers ----------------------------------------------------------------------------------------------


def documented_metrics() -> dict[str, tuple[str, frozenset[str]]]:
    """The catalogue table of docs/metrics.md: name -> (type, labels)."""
    out = {}
    for line in (ROOT / "docs" / "metrics.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 6 or not re.fullmatch(r"`[a-z_:][a-z0-9_:]*`", cells[0]):
            continue
        labels = frozenset(re.findall(r"`([a-z_]+)`", cells[3].split("(")[0]))
        out[cells[0].strip("`")] = (cells[1], labels)
    return out


def metric_names(expr: str, documented: dict[str, tuple[str, frozenset[str]]]) -> set[str]:
    """Metric names in a PromQL expression, histogram series (_bucket/_sum/_count) mapped to their metric."""
    names = set()
    for token in METRIC_TOKEN.findall(expr):
        for suffix in ("_bucket", "_sum", "_count"):
            base = token.removesuffix(suffix)
            if base != token and documented.get(base, ("",))[0] == "histogram":
                token = base
                break
        names.add(token)
    return names


def load_dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def dashboard_queries(dash: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable."""
    out = []
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            out.append((f"panel {panel['title']!r} target {target.get('refId')}", target["expr"]))
    for var in dash["templating"]["list"]:
        if var["type"] == "query":
            out.append((f"variable {var['name']}", var["definition"]))
    return out


def substitute_grafana_vars(expr: str) -> str:
    for var, value in GRAFANA_VARS.items():
        expr = expr.replace(var, value)
    return expr


def alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def k8s_docs() -> list[dict[str, Any]]:
    docs = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def systemd_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file as section -> key -> values (keys such as Environment= repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        assert current is not None, f"{path.name}: {line!r} outside a section"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def dockerfile_final_stage(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the last build stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", path.read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            instructions = []
        instructions.append((word.upper(), rest.strip()))
    return instructions


# --- every file parses --------------------------------------------------------------------------------------


def test_every_yaml_and_json_file_in_deploy_parses():
    files = sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yml", ".yaml", ".json"))
    assert len(files) >= 15, files
    for path in files:
        if path.suffix == ".json":
            assert isinstance(json.loads(path.read_text()), dict), path
        else:
            docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
            assert docs and all(isinstance(d, dict) for d in docs), path


# --- metrics catalogue ------------------------------------------------------------------------------------


def test_docs_list_every_spec_metric_with_its_type():
    documented = documented_metrics()
    for name, (kind, labels) in SPEC_METRICS.items():
        assert name in documented, f"docs/metrics.md has no row for {name}"
        assert documented[name][0] == kind, f"{name}: documented as {documented[name][0]}, spec says {kind}"
        if name.startswith("facestream_"):
            # the code may add labels to a spec metric (documented), never drop one
            assert labels <= documented[name][1], f"{name}: spec labels {sorted(labels)} not all documented"


@functools.cache
def _registered_metrics() -> dict[str, list[Any]]:
    """Import every module of pipeline/ and engines/ (not the torch-only training code) in a fresh interpreter and
    list the facestream_ metrics registered in prometheus_client's default registry: name -> [type, labels]."""
    script = r"""
import importlib, json, pkgutil, sys
import facestream.engines, facestream.pipeline
from prometheus_client import REGISTRY
skipped = {}
for pkg in (facestream.pipeline, facestream.engines):
    for mod in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        if ".training" in mod.name or mod.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(mod.name)
        except Exception as exc:  # an optional extra missing: that module's metrics cannot be checked here
            skipped[mod.name] = repr(exc)
out = {}
for collector in list(REGISTRY._collector_to_names):
    name, kind = getattr(collector, "_name", None), getattr(collector, "_type", None)
    if not name or not name.startswith("facestream_"):
        continue
    full = name + {"counter": "_total", "info": "_info"}.get(kind, "")
    out[full] = [kind, sorted(getattr(collector, "_labelnames", ()))]
print(json.dumps({"metrics": out, "skipped": skipped}))
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for mod, why in result["skipped"].items():
        print(f"not imported: {mod}: {why}")
    return result["metrics"]


def test_every_metric_the_code_registers_is_documented_with_its_labels():
    documented = documented_metrics()
    registered = _registered_metrics()
    assert len(registered) >= 10, f"only {sorted(registered)} registered: the walk found too little"
    problems = []
    for name, (kind, labels) in sorted(registered.items()):
        if name not in documented:
            problems.append(f"{name} ({kind}, labels {labels}) is registered but missing from docs/metrics.md")
            continue
        doc_kind, doc_labels = documented[name]
        if kind == "info":  # an Info's labels are set by .info(), not declared: documented as a gauge
            if doc_kind != "gauge":
                problems.append(f"{name}: an Info metric is a gauge of value 1, docs say {doc_kind}")
            continue
        if doc_kind != kind or set(labels) != set(doc_labels):
            problems.append(f"{name}: code {kind} {sorted(labels)}, docs {doc_kind} {sorted(doc_labels)}")
    assert not problems, "\n".join(problems)


def test_every_spec_metric_is_registered_by_the_code():
    """A metric renamed or never created in the code breaks the dashboard and alerts: catch it here."""
    registered = _registered_metrics()
    missing = [name for name in SPEC_METRICS if name.startswith("facestream_") and name not in registered]
    assert not missing, f"no module of pipeline/ or engines/ registers {missing}"


# --- Grafana ----------------------------------------------------------------------------------------------


def test_dashboard_json_is_what_the_generator_writes():
    spec = importlib.util.spec_from_file_location("make_dashboard", DEPLOY / "grafana" / "make_dashboard.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert DASHBOARD.read_text() == module.render(), "run: python deploy/grafana/make_dashboard.py"


def test_dashboard_model_has_uid_schema_version_and_a_stream_variable():
    dash = load_dashboard()
    assert isinstance(dash["schemaVersion"], int) and dash["schemaVersion"] >= 36
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", dash["uid"])
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    stream = variables["stream"]
    assert stream["type"] == "query" and stream["multi"] and stream["includeAll"]
    assert "stream" in stream["definition"]
    # the variable filters the per-stream panels
    assert sum('stream=~"$stream"' in expr for _, expr in dashboard_queries(dash)) >= 8


def test_dashboard_panels_are_unique_and_do_not_overlap():
    dash = load_dashboard()
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for panel in dash["panels"]:
        g = panel["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, panel["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]
        if panel["type"] != "row":
            assert panel["targets"], f"panel {panel['title']!r} has no query"
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


def test_dashboard_queries_use_only_documented_metrics_and_cover_the_brief():
    documented = documented_metrics()
    used: set[str] = set()
    for where, expr in dashboard_queries(load_dashboard()):
        names = metric_names(expr, documented) | ({"up"} if re.search(r"\bup\{", expr) else set())
        assert names, f"{where}: no metric in {expr!r}"
        unknown = {n for n in names if n != "up" and n not in documented}
        assert not unknown, f"{where}: {sorted(unknown)} not in docs/metrics.md"
        used |= names
    missing = DASHBOARD_MUST_USE - used
    assert not missing, f"dashboard shows nothing of {sorted(missing)}"


def test_dashboard_latency_panels_are_quantiles_and_match_score_is_a_heatmap():
    dash = load_dashboard()
    by_title = {p["title"]: p for p in dash["panels"]}
    latency = by_title["Capture-to-stage latency p50 / p99"]["targets"]
    exprs = [t["expr"] for t in latency]
    assert any(e.startswith("histogram_quantile(0.5,") for e in exprs)
    assert any(e.startswith("histogram_quantile(0.99,") for e in exprs)
    assert all("by (stage, le)" in e for e in exprs)
    heatmaps = [p for p in dash["panels"] if p["type"] == "heatmap"]
    assert any("facestream_match_score_bucket" in t["expr"] and t.get("format") == "heatmap"
               for p in heatmaps for t in p["targets"])


@needs_promtool
def test_every_dashboard_query_is_valid_promql(tmp_path):
    """promtool parses each query (Grafana variables substituted) as a recording rule."""
    queries = dashboard_queries(load_dashboard())
    rules = [{"record": f"facestream:dashboard_query_{i}", "expr": substitute_grafana_vars(expr)}
             for i, (_, expr) in enumerate(queries) if not expr.startswith("label_values(")]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    proc = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{len(rules)} rules found" in proc.stdout


def test_grafana_provisioning_points_at_the_dashboard_and_prometheus():
    datasources = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    (ds,) = datasources["datasources"]
    assert ds["type"] == "prometheus" and ds["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/facestream.yml").read_text())
    (provider,) = providers["providers"]
    compose = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    mounts = {m.split(":")[1]: m.split(":")[0] for m in compose["services"]["grafana"]["volumes"]}
    host_dir = (COMPOSE / mounts[provider["options"]["path"]]).resolve()
    assert host_dir == DASHBOARD.parent and DASHBOARD.exists()
    assert "prometheus" in compose["services"]


# --- Prometheus ----------------------------------------------------------------------------------------------


def test_prometheus_scrapes_the_four_stage_ports_with_a_stage_label():
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "facestream"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert job["honor_labels"] is True  # keeps the series' own stage label (see docs/metrics.md)
    seen = {}
    for static in job["static_configs"]:
        for target in static["targets"]:
            host, port = target.rsplit(":", 1)
            seen[static["labels"]["stage"]] = (host, int(port))
    assert {stage: port for stage, (_, port) in seen.items()} == STAGE_PORTS
    for rule_file in config["rule_files"]:
        assert (PROMETHEUS / rule_file).is_file(), rule_file
    # the target host names resolve on the compose network: a per-stage service or an alias of all-in-one
    services = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())["services"]
    aliases = set(services["facestream"]["networks"]["default"]["aliases"])
    for host, _ in seen.values():
        assert host in services and host in aliases, f"{host} does not resolve in both compose profiles"


def test_stage_ports_match_the_pipeline_config_defaults():
    config = pytest.importorskip("facestream.pipeline.config", reason="facestream.pipeline.config not importable")
    assert config.MetricsConfig().ports == STAGE_PORTS


def test_alerts_cover_the_brief_and_use_documented_metrics():
    documented = documented_metrics()
    rules = {r["alert"]: r for r in alert_rules()}
    for rule in rules.values():
        names = metric_names(rule["expr"], documented)
        unknown = {n for n in names if n not in documented}
        assert not unknown, f"{rule['alert']}: {sorted(unknown)} not in docs/metrics.md"
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]
        for text in rule["annotations"].values():
            assert not {n for n in metric_names(text, documented) if n not in documented}, text
    assert rules["FacestreamStageDown"]["expr"].startswith("up{") and rules["FacestreamStageDown"]["for"] == "1m"
    assert "facestream_source_up" in rules["FacestreamCameraDown"]["expr"]
    assert rules["FacestreamCameraDown"]["for"] == "1m"
    latency = rules["FacestreamLatencyP99High"]["expr"]
    assert "histogram_quantile(0.99" in latency and "capture_to_stage_seconds_bucket" in latency
    assert latency.strip().endswith("> 1")
    assert "facestream_frames_dropped_total" in rules["FacestreamFramesDropping"]["expr"]
    assert "facestream_stage_restarts_total" in rules["FacestreamStageRestarting"]["expr"]


@needs_promtool
@pytest.mark.parametrize(
    "args",
    [["check", "config", "prometheus.yml"], ["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"]],
    ids=["check-config", "check-rules", "test-rules"],
)
def test_promtool_accepts_config_rules_and_alert_tests(args):
    proc = subprocess.run([PROMTOOL, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout + proc.stderr


# --- compose and configs --------------------------------------------------------------------------------------


def _compose_files() -> dict[str, dict[str, Any]]:
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted(COMPOSE.glob("docker-compose*.yml"))}


def test_compose_profiles_run_all_in_one_or_one_service_per_stage():
    services = _compose_files()["docker-compose.yml"]["services"]
    assert services["facestream"]["profiles"] == ["all-in-one"]
    assert services["facestream"]["command"][:2] == ["run", "/etc/facestream/config.yaml"]
    for stage, port in STAGE_PORTS.items():
        svc = services[stage]
        assert svc["profiles"] == ["per-stage"]
        assert svc["command"][:2] == ["stage", stage] and "--config" in svc["command"]
        assert svc["environment"]["FACESTREAM_HEALTH_PORTS"] == str(port)
    for name in ("prometheus", "grafana"):
        assert "profiles" not in services[name], f"{name} should start with either profile"
        for published in services[name]["ports"]:
            assert published.startswith("127.0.0.1:"), f"{name} publishes {published} beyond localhost"


def test_compose_bind_mounts_and_dockerfiles_exist():
    for fname, doc in _compose_files().items():
        named_volumes = set(_compose_files()["docker-compose.yml"].get("volumes", {}))
        for name, svc in doc["services"].items():
            assert fname == "docker-compose.yml" or name in _compose_files()["docker-compose.yml"]["services"]
            for mount in svc.get("volumes", []):
                source = mount.split(":")[0]
                if source in named_volumes:
                    continue
                assert (COMPOSE / source).exists(), f"{fname} {name}: {source} does not exist"
            build = svc.get("build")
            if build:
                context = (COMPOSE / build["context"]).resolve()
                assert context == ROOT
                assert (context / build["dockerfile"]).is_file(), build


def test_deploy_configs_are_valid_pipeline_configs(tmp_path):
    config = pytest.importorskip("facestream.pipeline.config", reason="facestream.pipeline.config not importable")
    configs = {p.name: p.read_text() for p in sorted((DEPLOY / "config").glob("*.yaml"))}
    (configmap,) = [d for d in k8s_docs() if d["kind"] == "ConfigMap"]
    configs["k8s configmap"] = configmap["data"]["config.yaml"]
    services = _compose_files()["docker-compose.yml"]["services"]
    for i, (name, text) in enumerate(configs.items()):
        path = tmp_path / f"config{i}.yaml"
        path.write_text(text)
        cfg = config.load_config(path, environ={})
        assert cfg.metrics.ports == STAGE_PORTS, name
        if name == "host.yaml":
            assert cfg.metrics.host == "127.0.0.1"
        else:
            assert cfg.metrics.host == "0.0.0.0", f"{name}: Prometheus cannot scrape a container on 127.0.0.1"
        if name == "container-stages.yaml":
            for stage in ("preprocess", "inference", "sink"):
                host = cfg.connect_endpoint(stage).removeprefix("tcp://").rsplit(":", 1)[0]
                assert host == stage and stage in services, f"{stage} hop connects to {host}"


# --- Dockerfiles --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour,base", [("cpu", "python:3.11-slim"), ("gpu", "nvcr.io/nvidia/tensorrt:"),
                                          ("jetson", "nvcr.io/nvidia/l4t-tensorrt:r10.3")])
def test_dockerfile_runs_as_non_root_with_healthcheck_and_cache_volumes(flavour, base):
    path = DEPLOY / "docker" / f"Dockerfile.{flavour}"
    text = path.read_text()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", text, flags=re.M))
    final = dockerfile_final_stage(path)
    from_ref = final[0][1].split()[0]
    resolved = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], from_ref)
    assert resolved.startswith(base), resolved
    users = [a for i, a in final if i == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    (health,) = [a for i, a in final if i == "HEALTHCHECK"]
    assert "facestream-healthcheck" in health
    env = " ".join(a for i, a in final if i == "ENV")
    volumes = " ".join(a for i, a in final if i == "VOLUME")
    for var, path_ in (("FACESTREAM_MODELS", "/var/lib/facestream/models"),
                       ("FACESTREAM_ENGINES", "/var/lib/facestream/engines")):
        assert f"{var}={path_}" in env and path_ in volumes
    assert any(i == "ENTRYPOINT" and "facestream" in a for i, a in final)
    # every COPY from the build context exists and passes the Dockerfile's own .dockerignore allowlist
    allowed = [ln[1:] for ln in (path.parent / f"{path.name}.dockerignore").read_text().splitlines()
               if ln.startswith("!")]
    for line in re.findall(r"^COPY (?!--from)(.+)$", text, flags=re.M):
        for src in line.split()[:-1]:
            assert (ROOT / src).exists(), f"{path.name}: COPY {src} missing"
            assert any(src == a or src.startswith(a.rstrip("/") + "/") for a in allowed), f"{src} is ignored"


# --- the container health check -----------------------------------------------------------------------------


class _MetricsHandler(http.server.BaseHTTPRequestHandler):
    body = b"# TYPE facestream_frames_in_total counter\nfacestream_frames_in_total 1.0\n"

    def do_GET(self):  # noqa: N802 (http.server API)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


class _OtherHandler(_MetricsHandler):
    body = b"# TYPE go_goroutines gauge\ngo_goroutines 3\n"


def _serve(handler) -> tuple[http.server.HTTPServer, int]:
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthcheck(ports: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(DEPLOY / "docker" / "healthcheck.py")], capture_output=True,
                          text=True, timeout=30, env={"FACESTREAM_HEALTH_PORTS": ports,
                                                      "FACESTREAM_HEALTH_TIMEOUT_S": "2"})


def test_healthcheck_passes_only_when_every_port_serves_facestream_metrics():
    good, good_port = _serve(_MetricsHandler)
    other, other_port = _serve(_OtherHandler)
    closed = _free_port()
    try:
        assert _healthcheck(str(good_port)).returncode == 0
        down = _healthcheck(f"{good_port},{closed}")
        assert down.returncode == 1 and f":{closed}/metrics" in down.stderr and str(good_port) not in down.stderr
        wrong = _healthcheck(f"{other_port}")
        assert wrong.returncode == 1 and "no facestream_ metrics" in wrong.stderr
        assert _healthcheck("not-a-port").returncode == 1
    finally:
        good.shutdown()
        other.shutdown()


# --- Kubernetes -------------------------------------------------------------------------------------------


def test_k8s_deployment_requests_a_gpu_mounts_caches_and_probes_metrics():
    docs = k8s_docs()
    for d in docs:
        assert d.get("apiVersion") and d.get("kind") and d["metadata"].get("name"), d
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    (deploy,) = by_kind["Deployment"]
    pod = deploy["spec"]["template"]["spec"]
    (main,) = pod["containers"]
    assert str(main["resources"]["limits"]["nvidia.com/gpu"]) == "1"
    assert main["livenessProbe"]["httpGet"]["path"] == "/metrics"
    assert main["args"][0] == "run"
    assert pod["securityContext"]["runAsNonRoot"] is True
    mounts = {m["mountPath"]: m["name"] for m in main["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    for path_ in ("/var/lib/facestream/models", "/var/lib/facestream/engines"):
        claim = volumes[mounts[path_]]["persistentVolumeClaim"]["claimName"]
        assert claim in {p["metadata"]["name"] for p in by_kind["PersistentVolumeClaim"]}
    config_volume = volumes[mounts["/etc/facestream"]]["configMap"]["name"]
    (configmap,) = by_kind["ConfigMap"]
    assert config_volume == configmap["metadata"]["name"] and "config.yaml" in configmap["data"]
    assert main["args"][1] == "/etc/facestream/config.yaml"
    # Service selects the pod and names its metrics ports; the ServiceMonitor scrapes those ports
    container_ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    assert sorted(v for k, v in container_ports.items() if k.startswith("metrics")) == sorted(STAGE_PORTS.values())
    (service,) = by_kind["Service"]
    labels = deploy["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= set(container_ports)
    (monitor,) = by_kind["ServiceMonitor"]
    service_ports = {p["name"] for p in service["spec"]["ports"]}
    stages = set()
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in service_ports and endpoint["path"] == "/metrics"
        stages |= {r["replacement"] for r in endpoint["relabelings"] if r["targetLabel"] == "stage"}
    assert stages == set(STAGE_PORTS)
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (DEPLOY / "k8s" / resource).is_file()


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_kubectl_renders_the_kustomization():
    proc = subprocess.run(["kubectl", "kustomize", str(DEPLOY / "k8s")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all(proc.stdout) if d]
    assert {"Deployment", "Service", "ConfigMap", "PersistentVolumeClaim"} <= set(kinds)


# --- systemd ------------------------------------------------------------------------------------------------


HARDENING = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
             "RestrictSUIDSGID": "yes", "ProtectKernelModules": "yes", "CapabilityBoundingSet": ""}


@pytest.mark.parametrize("unit,command", [("facestream.service", "run /etc/facestream/config.yaml"),
                                          ("facestream-stage@.service", "stage %i --config /etc/facestream/config.yaml")])
def test_systemd_units_restart_on_failure_run_unprivileged_and_are_hardened(unit, command):
    sections = systemd_unit(DEPLOY / "systemd" / unit)
    service = {k: v[-1] for k, v in sections["Service"].items()}
    assert service["ExecStart"].endswith(command)
    assert service["Restart"] == "on-failure"
    assert service["User"] not in ("root", "0")
    for key, value in HARDENING.items():
        assert service.get(key) == value, f"{unit}: {key}={service.get(key)!r}, want {value!r}"
    assert "PrivateDevices" not in service, "PrivateDevices hides the GPU"
    env = dict(e.split("=", 1) for e in sections["Service"]["Environment"])
    assert env["FACESTREAM_MODELS"].startswith("/var/lib/facestream/")
    assert env["FACESTREAM_ENGINES"].startswith("/var/lib/facestream/")
    assert sections["Install"]["WantedBy"] == ["multi-user.target"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify_finds_nothing_to_report(tmp_path):
    for unit in ("facestream.service", "facestream-stage@.service"):
        text = (DEPLOY / "systemd" / unit).read_text()
        # verify checks that ExecStart exists; the package is not installed at /opt/facestream here
        text = text.replace("/opt/facestream/bin/facestream", shutil.which("true") or "/bin/true")
        (tmp_path / unit.replace("@.", "@capture.")).write_text(text)
    units = sorted(str(p) for p in tmp_path.iterdir())
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no", *units], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    complaints = [ln for ln in (proc.stdout + proc.stderr).splitlines() if str(tmp_path) in ln or "facestream" in ln]
    assert proc.returncode == 0 and not complaints, proc.stdout + proc.stderr
