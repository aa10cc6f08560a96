"""Every file in deploy/ parses, and docs/metrics.md lists every metric the spec promises and every metric
the code registers, with its type and labels."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from typing import Any

import yaml
from deploy_helpers import DEPLOY, ROOT, SPEC_METRICS, documented_metrics

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
