"""The Kubernetes manifests and the systemd units: GPU, caches, probes, restart policy and hardening."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
import yaml
from deploy_helpers import DEPLOY, STAGE_PORTS, k8s_docs, systemd_unit
from test_k8s_sharded import kubectl, needs_kubectl


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


@needs_kubectl
def test_kubectl_renders_the_kustomization():
    proc = subprocess.run([kubectl(), "kustomize", str(DEPLOY / "k8s")], capture_output=True, text=True, timeout=60)
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
