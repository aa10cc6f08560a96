"""The Grafana dashboard: generated, well-formed, and querying only documented metrics (valid PromQL)."""

from __future__ import annotations

import importlib.util
import re
import subprocess

import yaml
from deploy_helpers import (
    DASHBOARD,
    DEPLOY,
    PROMTOOL,
    dashboard_queries,
    documented_metrics,
    load_dashboard,
    metric_names,
    needs_promtool,
    substitute_grafana_vars,
)

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


def _generator():
    spec = importlib.util.spec_from_file_location("make_dashboard", DEPLOY / "grafana" / "make_dashboard.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dashboard_json_is_what_the_generator_writes():
    assert DASHBOARD.read_text() == _generator().render(), "run: python deploy/grafana/make_dashboard.py"


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


@needs_promtool
def test_nonzero_or_total_shows_the_reasons_that_happened_else_one_zero_line(tmp_path):
    """The reason panels (drops, rejections, write errors) on series that exist at 0 from the start: one zero line
    per stage while nothing happens, the reason itself once it does (promtool evaluates the generator's query)."""
    gen = _generator()
    per_stage = gen.nonzero_or_total("increase", "facestream_messages_rejected_total", "stage, reason", "stage")
    overall = gen.nonzero_or_total("rate", "facestream_sink_write_errors_total", "reason", "")
    assert sum(" > 0 or on (" in expr for _, expr in dashboard_queries(load_dashboard())) >= 3
    rejected = "facestream_messages_rejected_total"
    series = [
        {"series": f'{rejected}{{stage="preprocess", reason="bad_type"}}', "values": "0 0 0 0 0"},
        {"series": f'{rejected}{{stage="preprocess", reason="truncated"}}', "values": "0 0 2 4 4"},
        {"series": f'{rejected}{{stage="sink", reason="bad_type"}}', "values": "0 0 0 0 0"},
        {"series": 'facestream_sink_write_errors_total{reason="disk_full"}', "values": "0 0 0 0 0"},
        {"series": 'facestream_sink_write_errors_total{reason="io_error"}', "values": "0 0 0 12 12"},
    ]
    cases = [
        (per_stage, "1m", [('{stage="preprocess"}', 0), ('{stage="sink"}', 0)]),
        (per_stage, "3m", [('{stage="preprocess", reason="truncated"}', 4), ('{stage="sink"}', 0)]),
        (overall, "1m", [("{}", 0)]),
        (overall, "3m", [('{reason="io_error"}', 0.1)]),
    ]
    tests = [{"expr": expr.replace("$__rate_interval", "2m"), "eval_time": at,
              "exp_samples": [{"labels": labels, "value": value} for labels, value in samples]}
             for expr, at, samples in cases]
    (tmp_path / "none.yml").write_text("groups: []\n")
    (tmp_path / "test.yml").write_text(yaml.safe_dump({
        "rule_files": ["none.yml"], "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": tests}]}))
    proc = subprocess.run([PROMTOOL, "test", "rules", "test.yml"], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
