"""Series created at 0 at stage start (pipeline/metrics.py ``init_series``): the reason lists stay complete, and
each stage's known label sets exist before anything happens (so the dashboard reads 0, not "no data")."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from deploy_helpers import ROOT

from facestream.pipeline import metrics as m

PIPELINE = ROOT / "pipeline"
# position of the ``reason`` argument of the wire_checks/records helpers
REASON_ARG = {"check_int": 2, "check_float": 2, "check_text": 2, "check_list": 2, "_map": 2, "_required": 3}


def _calls(path: Path, names: set[str]) -> Iterator[ast.Call]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            if name in names:
                yield node


def _strings(node: ast.AST | None, path: Path) -> set[str]:
    """The label values an argument can take: string constants (also inside ``a if c else b``) and module-level
    constants it names; pass-through variables (``exc.reason``, a ``reason`` parameter) give nothing."""
    if node is None:
        return set()
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _strings(node.body, path) | _strings(node.orelse, path)
    if isinstance(node, ast.Name) and node.id.isupper():
        module = importlib.import_module("facestream." + ".".join(path.relative_to(ROOT).with_suffix("").parts))
        value = getattr(module, node.id, None)
        return {value} if isinstance(value, str) else set()
    return set()


def _arg(call: ast.Call, index: int, keyword: str) -> ast.AST | None:
    if len(call.args) > index:
        return call.args[index]
    return next((k.value for k in call.keywords if k.arg == keyword), None)


def test_reject_reasons_are_every_reason_the_decoder_and_inlet_reject_for():
    found: set[str] = set()
    for path in PIPELINE.rglob("*.py"):
        for call in _calls(path, {"WireError"}):
            found |= _strings(_arg(call, 0, "reason"), path)
        for name, index in REASON_ARG.items():  # helpers that raise WireError(reason) for their caller
            for call in _calls(path, {name}):
                found |= _strings(_arg(call, index, "reason"), path)
    inlet = PIPELINE / "stages" / "inlet.py"
    for call in _calls(inlet, {"reject"}):
        found |= _strings(_arg(call, 0, "reason"), inlet)
    assert len(found) >= 15, found
    assert found - set(m.REJECT_REASONS) == set(), "add to metrics.REJECT_REASONS"
    assert set(m.REJECT_REASONS) - found == set(), "no longer raised anywhere: remove from metrics.REJECT_REASONS"


def test_drop_reasons_cover_every_reason_a_stage_drops_for():
    known = set().union(*m.DROP_REASONS.values())
    found: set[str] = set()
    for path in (PIPELINE / "stages").glob("*.py"):
        for call in _calls(path, {"drop", "count"}):
            if isinstance(call.func, ast.Attribute) and "books" in ast.unparse(call.func.value):
                found |= _strings(_arg(call, 1, "reason"), path)
    assert {"stale", "backpressure", "shutdown"} <= found, found
    assert found - known == set(), "add to metrics.DROP_REASONS"
    assert set(m.DROP_REASONS) == set(m.STAGE_ORDER)


def test_sink_write_error_reasons_cover_the_literal_ones_and_the_documented_ones():
    found: set[str] = set()
    for path in PIPELINE.rglob("*.py"):
        for call in _calls(path, {"labels"}):
            if ast.unparse(call.func).endswith("SINK_WRITE_ERRORS.labels"):
                found |= _strings(_arg(call, 0, "reason"), path)
    assert found, "no SINK_WRITE_ERRORS.labels(...) found"
    documented = {"disk_full", "permission", "read_only", "io_error"}
    assert (found | documented) - set(m.SINK_WRITE_ERROR_REASONS) == set(), "add to metrics.SINK_WRITE_ERROR_REASONS"


_SCRIPT = r"""
import json, sys
from prometheus_client import REGISTRY
from facestream.pipeline import metrics as m
m.init_series(sys.argv[1], ["cam-a", "cam-b"])
print(json.dumps([[s.name, s.labels, s.value] for fam in REGISTRY.collect() for s in fam.samples
                  if s.name.startswith("facestream_") and not s.name.endswith("_created")]))
"""


def _series_after_init(stage: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, stage], capture_output=True, text=True, timeout=60,
                          cwd=ROOT, check=True)
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for name, labels, value in json.loads(proc.stdout):
        out.setdefault(name, []).append((labels, value))
    return out


def test_each_stage_starts_with_its_known_series_at_zero():
    expected = {
        "capture": {"facestream_source_frames_total", "facestream_source_reconnects_total",
                    "facestream_source_stalls_total", "facestream_source_decode_errors_total",
                    "facestream_source_dropped_frames_total", "facestream_source_up"},
        "preprocess": {"facestream_messages_rejected_total", "facestream_transport_auth_failures_total"},
        "inference": {"facestream_faces_detected_total", "facestream_faces_identified_total",
                      "facestream_tracks_active", "facestream_embeddings_computed_total",
                      "facestream_track_events_total"},
        "sink": {"facestream_sink_events_written_total", "facestream_sink_write_errors_total",
                 "facestream_frames_lost_total"},
    }
    for stage, names in expected.items():
        series = _series_after_init(stage)
        common = {"facestream_frames_in_total", "facestream_frames_out_total", "facestream_frames_dropped_total",
                  "facestream_stage_restarts_total", "facestream_heartbeats_missed_total"}
        for name in names | common:
            assert series.get(name), f"{stage}: no {name} series after init_series"
            assert all(value == 0 for _, value in series[name]), (stage, name, series[name])
        streams = {labels["stream"] for labels, _ in series["facestream_frames_in_total"]}
        assert streams == {"cam-a", "cam-b"}, (stage, streams)
        drops = {(labels["stream"], labels["reason"]) for labels, _ in series["facestream_frames_dropped_total"]}
        assert drops == {(s, r) for s in ("cam-a", "cam-b") for r in m.DROP_REASONS[stage]}
        peers = {labels["peer"] for labels, _ in series["facestream_heartbeats_missed_total"]}
        i = m.STAGE_ORDER.index(stage)
        assert peers == set(m.STAGE_ORDER[max(i - 1, 0):i + 2]) - {stage}, (stage, peers)
        # a series another stage owns is not created here
        assert ("facestream_source_up" in series) == (stage == "capture")
        assert ("facestream_messages_rejected_total" in series) == (stage != "capture")
