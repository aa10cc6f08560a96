"""Prometheus scrapes the four stage ports; the alerts cover the brief; promtool accepts config, rules and tests."""

from __future__ import annotations

import subprocess

import pytest
import yaml
from deploy_helpers import (
    COMPOSE,
    DASHBOARD,
    DEPLOY,
    PROMETHEUS,
    PROMTOOL,
    STAGE_PORTS,
    alert_rules,
    documented_metrics,
    metric_names,
    needs_promtool,
)


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
