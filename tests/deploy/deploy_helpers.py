"""Shared paths, the spec's metric list and parsers for the deployment-asset tests (tests/deploy/test_*.py)."""

from __future__ import annotations

import json
import re
import shutil
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


# --- the dashboard's queries as the Prometheus HTTP API calls Grafana makes -----------------------------------

LABEL_VALUES = re.compile(r"label_values\(\s*(?:(?P<match>[^,]+?)\s*,\s*)?(?P<label>[a-zA-Z_][a-zA-Z0-9_]*)\s*\)")


def panel_targets(dash: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target of every panel (rows included: a collapsed row holds panels)."""
    out = []
    for panel in dash["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            out.extend((inner["title"], t["expr"]) for t in inner.get("targets", []))
    return out


def template_queries(dash: dict[str, Any]) -> list[tuple[str, str]]:
    """(variable name, definition) of every query variable."""
    return [(v["name"], v["definition"]) for v in dash["templating"]["list"] if v["type"] == "query"]


def template_api_call(definition: str) -> tuple[str, dict[str, str]]:
    """The Prometheus API path and parameters a Grafana template query stands for.

    ``label_values(metric{sel}, label)`` -> ``/api/v1/label/<label>/values?match[]=metric{sel}``;
    ``label_values(label)`` -> the same without ``match[]``; ``query_result(expr)`` -> an instant query.
    Anything else raises: the dashboard must not use a template query this check cannot run.
    """
    found = LABEL_VALUES.fullmatch(definition.strip())
    if found:
        params = {"match[]": found["match"]} if found["match"] else {}
        return f"/api/v1/label/{found['label']}/values", params
    if definition.strip().startswith("query_result(") and definition.strip().endswith(")"):
        return "/api/v1/query", {"query": definition.strip()[len("query_result("):-1]}
    raise ValueError(f"template query {definition!r}: not label_values(...) or query_result(...)")
