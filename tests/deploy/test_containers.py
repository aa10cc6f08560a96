"""Compose, the Dockerfiles and the container healthcheck point at files, ports and users that exist."""

from __future__ import annotations

import http.server
import re
import socket
import subprocess
import sys
import threading
from typing import Any

import pytest
import yaml
from deploy_helpers import COMPOSE, DEPLOY, ROOT, STAGE_PORTS, dockerfile_final_stage, k8s_docs


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
