"""Writes deploy/grafana/dashboards/facestream.json, the Grafana dashboard of a facestream deployment.

The JSON is generated so that panels stay uniform (datasource variable, stream filter, units) and a metric renamed in
docs/metrics.md is changed in one place. Run after editing: ``python deploy/grafana/make_dashboard.py``.
tests/deploy/test_dashboard.py checks that the committed JSON equals this script's output.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards" / "facestream.json"
UID = "facestream-overview"
DS = {"type": "prometheus", "uid": "${datasource}"}
STREAM = 'stream=~"$stream"'
RATE = "$__rate_interval"


def q(expr: str, legend: str = "", **extra: Any) -> dict[str, Any]:
    """One Prometheus query of a panel."""
    return {"datasource": DS, "expr": expr, "legendFormat": legend or "__auto", **extra}


def quantiles(metric: str, by: str, legend: str, selector: str = "") -> list[dict[str, Any]]:
    """p50 and p99 of a histogram, grouped by the labels in ``by``."""
    sel = f"{{{selector}}}" if selector else ""
    return [
        q(
            f"histogram_quantile({p}, sum by ({by}, le) (rate({metric}_bucket{sel}[{RATE}])))",
            f"{legend} p{int(p * 100)}",
        )
        for p in (0.5, 0.99)
    ]


def nonzero_or_total(fn: str, metric: str, by: str, total_by: str, selector: str = "") -> str:
    """``fn`` (rate or increase) of ``metric`` per ``by`` where it is non-zero, else one line per ``total_by``:
    the same metric summed, i.e. 0 while nothing happens.

    The stages create their reason series at 0 when they start (pipeline/metrics.py ``init_series``: dozens per
    stream or stage); this keeps the legend to one zero line per stream or stage until something happens, and
    a missing metric still gives no data (no ``vector(0)``: a zero here is always read from the metric).
    """
    inner = f"{fn}({metric}{{{selector}}}[{RATE}])" if selector else f"{fn}({metric}[{RATE}])"
    total = f"sum by ({total_by}) ({inner})" if total_by else f"sum({inner})"
    return f"sum by ({by}) ({inner}) > 0 or on ({total_by}) {total}"


class Layout:
    """Places panels left to right on Grafana's 24-column grid and numbers them."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.x = 0
        self.y = 0
        self.row_h = 0

    def _next_id(self) -> int:
        return len(self.panels) + 1

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append(
            {"id": self._next_id(), "type": "row", "title": title, "collapsed": False, "panels": [],
             "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}}
        )
        self.y += 1

    def _newline(self) -> None:
        if self.x:
            self.y += self.row_h
            self.x = 0
            self.row_h = 0

    def add(self, panel: dict[str, Any], w: int = 12, h: int = 8) -> None:
        if self.x + w > 24:
            self._newline()
        panel = {"id": self._next_id(), "datasource": DS, **panel,
                 "gridPos": {"h": h, "w": w, "x": self.x, "y": self.y}}
        for i, target in enumerate(panel.get("targets", [])):
            target["refId"] = chr(ord("A") + i)
        self.panels.append(panel)
        self.x += w
        self.row_h = max(self.row_h, h)


def timeseries(title: str, targets: list[dict[str, Any]], unit: str = "short", description: str = "",
               stack: bool = False, draw: str = "line") -> dict[str, Any]:
    custom: dict[str, Any] = {"drawStyle": draw, "fillOpacity": 10 if not stack else 60, "showPoints": "never"}
    if stack:
        custom["stacking"] = {"mode": "normal", "group": "A"}
    return {
        "type": "timeseries", "title": title, "description": description, "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit, "custom": custom}, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull", "max"]},
                    "tooltip": {"mode": "multi", "sort": "desc"}},
    }


def stat(title: str, target: dict[str, Any], unit: str = "short", text_mode: str = "value",
         description: str = "") -> dict[str, Any]:
    return {
        "type": "stat", "title": title, "description": description, "targets": [target],
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                    "textMode": text_mode, "colorMode": "value", "graphMode": "area"},
    }


def up_timeline(title: str, targets: list[dict[str, Any]], description: str = "") -> dict[str, Any]:
    """A state timeline for 0/1 gauges: green up, red down."""
    return {
        "type": "state-timeline", "title": title, "description": description, "targets": targets,
        "fieldConfig": {
            "defaults": {
                "mappings": [{"type": "value", "options": {"0": {"text": "down", "color": "red"},
                                                            "1": {"text": "up", "color": "green"}}}],
                "thresholds": {"mode": "absolute", "steps": [{"color": "red", "value": None},
                                                              {"color": "green", "value": 1}]},
            },
            "overrides": [],
        },
        "options": {"showValue": "never", "mergeValues": True, "legend": {"displayMode": "list", "showLegend": False}},
    }


def build() -> dict[str, Any]:
    lay = Layout()

    lay.row("Overview")
    lay.add(stat("Stages answering", q('sum(up{job="facestream"})', "stages"),
                 description="Stage processes Prometheus can scrape (4 when all are up)."), w=6, h=4)
    lay.add(stat("Cameras up", q(f"sum(facestream_source_up{{{STREAM}}})", "cameras")), w=6, h=4)
    lay.add(stat("Gallery size", q("max(facestream_gallery_size)", "people"),
                 description="People enrolled in the gallery."), w=4, h=4)
    lay.add(stat("Active tracks", q(f"sum(facestream_tracks_active{{{STREAM}}})", "tracks")), w=4, h=4)
    lay.add(stat("Version", q("max by (version) (facestream_build_info)", "{{version}}", instant=True),
                 text_mode="name"), w=4, h=4)

    lay.row("Throughput")
    lay.add(timeseries("Frames in per stream (fps)", [
        q(f"sum by (stream) (rate(facestream_source_frames_total{{{STREAM}}}[{RATE}]))", "{{stream}} camera"),
        q(f"sum by (stage, stream) (rate(facestream_frames_in_total{{{STREAM}}}[{RATE}]))", "{{stream}} {{stage}}"),
    ], unit="short", description="Frames decoded from each camera and accepted by each stage, per second."))
    lay.add(timeseries("Frames out per stream (fps)", [
        q(f"sum by (stage, stream) (rate(facestream_frames_out_total{{{STREAM}}}[{RATE}]))", "{{stream}} {{stage}}"),
    ], description="Frames each stage sends on; the sink's line is results written."))
    lay.add(timeseries("Drops by reason (frames/s)", [
        q(nonzero_or_total("rate", "facestream_frames_dropped_total", "stage, stream, reason", "stream", STREAM),
          "{{stream}} {{stage}} {{reason}}"),
        q(f"sum by (stream) (rate(facestream_source_dropped_frames_total{{{STREAM}}}[{RATE}]))",
          "{{stream}} source fell behind"),
        q(f"sum by (stream) (rate(facestream_frames_lost_total{{{STREAM}}}[{RATE}]))", "{{stream}} lost in flight"),
    ], stack=True, description="Frames dropped on purpose (latest-frame policy on live sources, by reason) and frames "
                               "lost in flight when a stage crashed. File sources in lossless mode drop nothing."))
    lay.add(timeseries("Sink events written (events/s)", [
        q(f"sum by (kind) (rate(facestream_sink_events_written_total[{RATE}]))", "{{kind}}"),
        q(nonzero_or_total("rate", "facestream_sink_write_errors_total", "reason", ""), "write error {{reason}}"),
    ]))

    lay.row("Latency")
    lay.add(timeseries("Capture-to-stage latency p50 / p99",
                       quantiles("facestream_capture_to_stage_seconds", "stage", "{{stage}}"), unit="s",
                       description="Wall-clock time from capture to the end of each stage's work."))
    lay.add(timeseries("Stage processing time p50 / p99",
                       quantiles("facestream_stage_processing_seconds", "stage", "{{stage}}"), unit="s"))
    lay.add(timeseries("Queue depth", [q("max by (stage) (facestream_queue_depth)", "{{stage}}")],
                       description="Messages waiting in each stage's bounded input queue."))
    lay.add(timeseries("Engine inference latency p50 / p99",
                       quantiles("facestream_engine_infer_seconds", "model, backend", "{{model}} {{backend}}"),
                       unit="s"))

    lay.row("Stages and links")
    lay.add(up_timeline("Stages up", [
        q('max by (stage) (up{job="facestream"})', "scrape {{stage}}"),
        q("max by (stage) (facestream_stage_up)", "running {{stage}}"),
    ]))
    lay.add(timeseries("Stage restarts", [
        q(f"sum by (stage) (increase(facestream_stage_restarts_total[{RATE}]))", "{{stage}}"),
    ], draw="bars", description="Restarts by the supervisor of facestream run."))
    lay.add(up_timeline("Peers up (heartbeats)", [
        q("max by (stage, peer) (facestream_peer_up)", "{{stage}} <- {{peer}}"),
    ]))
    lay.add(timeseries("Link and decoder errors", [
        q(nonzero_or_total("increase", "facestream_messages_rejected_total", "stage, reason", "stage"),
          "rejected {{stage}} {{reason}}"),
        q(f"sum by (stage, peer) (increase(facestream_heartbeats_missed_total[{RATE}]))",
          "heartbeat missed {{stage}} <- {{peer}}"),
        q(f"sum by (stage) (increase(facestream_transport_auth_failures_total[{RATE}]))", "auth refused {{stage}}"),
    ], draw="bars"))

    lay.row("Cameras")
    lay.add(up_timeline("Cameras up", [q(f"max by (stream) (facestream_source_up{{{STREAM}}})", "{{stream}}")]))
    lay.add(timeseries("Reconnects, stalls and decode errors per camera", [
        q(f"sum by (stream) (increase(facestream_source_reconnects_total{{{STREAM}}}[{RATE}]))",
          "{{stream}} reconnects"),
        q(f"sum by (stream) (increase(facestream_source_stalls_total{{{STREAM}}}[{RATE}]))", "{{stream}} stalls"),
        q(f"sum by (stream) (increase(facestream_source_decode_errors_total{{{STREAM}}}[{RATE}]))",
          "{{stream}} decode errors"),
    ], draw="bars"))

    lay.row("Faces")
    lay.add(timeseries("Faces detected and identified (faces/s)", [
        q(f"sum by (stream) (rate(facestream_faces_detected_total{{{STREAM}}}[{RATE}]))", "{{stream}} detected"),
        q(f"sum by (stream, kind) (rate(facestream_faces_identified_total{{{STREAM}}}[{RATE}]))",
          "{{stream}} {{kind}}"),
    ], description="Detections per frame, and recognition decisions per track: known or unknown."))
    lay.add({
        "type": "heatmap", "title": "Match score distribution",
        "description": "Best gallery similarity of each match; a pile-up near the threshold means ambiguous faces.",
        "targets": [q(f"sum by (le) (increase(facestream_match_score_bucket[{RATE}]))", "{{le}}",
                      format="heatmap")],
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {"calculate": False, "cellGap": 1, "yAxis": {"unit": "none", "decimals": 2},
                    "color": {"mode": "scheme", "scheme": "Oranges", "exponent": 0.5, "steps": 64},
                    "tooltip": {"show": True, "yHistogram": True}, "legend": {"show": True}},
    })
    lay.add(timeseries("Embeddings computed vs saved (per s)", [
        q(f"sum(rate(facestream_embeddings_computed_total[{RATE}]))", "computed"),
        q(f"sum(rate(facestream_embeddings_saved_total[{RATE}]))", "saved by per-track scheduling"),
    ]))
    lay.add(timeseries("Active tracks and gallery size", [
        q(f"sum by (stream) (facestream_tracks_active{{{STREAM}}})", "{{stream}} tracks"),
        q("max(facestream_gallery_size)", "gallery people"),
    ]))

    lay.row("Engines")
    lay.add({
        "type": "table", "title": "Engine backends",
        "description": "Backend each model runs on and why (TensorRT, or ONNX Runtime with the reason).",
        "targets": [q("max by (model, backend, reason) (facestream_engine_backend_info)", "", format="table",
                      instant=True)],
        "fieldConfig": {"defaults": {}, "overrides": []},
        "transformations": [{"id": "organize", "options": {"excludeByName": {"Time": True, "Value": True}}}],
        "options": {"showHeader": True},
    })
    lay.add(timeseries("Engine batch size p50 / p99",
                       quantiles("facestream_engine_batch_size", "model, backend", "{{model}} {{backend}}")))

    lay.row("Processes")
    lay.add(timeseries("Resident memory per stage", [
        q('max by (stage) (process_resident_memory_bytes{job="facestream"})', "{{stage}}"),
    ], unit="bytes", description="Grows and never levels off? A leak: compare with bench/results soak runs."))
    lay.add(timeseries("Open file descriptors per stage", [
        q('max by (stage) (process_open_fds{job="facestream"})', "{{stage}}"),
    ]))

    return {
        "uid": UID,
        "title": "facestream",
        "description": "facestream pipeline: throughput, latency, cameras, faces, engines (metrics: docs/metrics.md)",
        "tags": ["facestream"],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "timezone": "",
        "annotations": {"list": []},
        "links": [],
        "templating": {"list": [
            {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
             "hide": 0, "current": {}, "options": [], "refresh": 1, "regex": ""},
            {"name": "stream", "label": "Stream", "type": "query", "datasource": DS,
             "definition": "label_values(facestream_source_frames_total, stream)",
             "query": {"query": "label_values(facestream_source_frames_total, stream)",
                       "refId": "StandardVariableQuery"},
             "includeAll": True, "multi": True, "allValue": ".*", "refresh": 2, "sort": 1, "hide": 0,
             "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "options": [], "regex": ""},
        ]},
        "panels": lay.panels,
    }


def render() -> str:
    return json.dumps(build(), indent=2) + "\n"


def main() -> int:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(render())
    print(f"wrote {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
