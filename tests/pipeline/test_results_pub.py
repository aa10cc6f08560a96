"""The sink's results PUB follows the hop rule: plain tcp:// off this host is refused in one line unless CURVE
(subscribers are CURVE clients listed in sink.pub_allowed_clients) or transport.allow_plain_tcp (#13)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
import zmq

from facestream.errors import FacestreamError
from facestream.pipeline.config import load_config
from facestream.pipeline.security import (
    configure_curve_client,
    generate_keypair,
    load_public_key,
    load_secret_key,
    stop_authenticator,
)
from facestream.pipeline.transport import open_publisher

from .helpers import REPO


def _cfg(tmp_path, **sink):
    return load_config(None, overrides={"transport": {"run_dir": str(tmp_path / "run")}, "sink": sink})


def test_plain_tcp_pub_off_host_is_refused_in_one_line(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"transport": {"run_dir": str(tmp_path / "run")},
                                      "sink": {"out_dir": str(tmp_path / "out"), "pub": "tcp://0.0.0.0:5999"},
                                      "metrics": {"enabled": False}}))
    r = subprocess.run([sys.executable, "-m", "facestream.pipeline.cli", "stage", "sink", "--config", str(config)],
                       cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "sink.pub" in lines[0] and "tcp://0.0.0.0:5999" in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_plain_pub_on_loopback_or_with_consent_is_allowed(tmp_path):
    ctx = zmq.Context()
    try:
        open_publisher(ctx, _cfg(tmp_path, pub="tcp://127.0.0.1:0")).close(0)
        cfg = _cfg(tmp_path, pub="tcp://0.0.0.0:0")
        cfg.transport.allow_plain_tcp = True
        open_publisher(ctx, cfg).close(0)
        cfg.transport.allow_plain_tcp = False
        cfg.transport.curve.enabled = True
        with pytest.raises(FacestreamError, match="sink.pub_allowed_clients"):
            open_publisher(ctx, cfg)
    finally:
        ctx.destroy(0)


def _subscriber(ctx, endpoint: str, keys, who: str | None, server_public) -> zmq.Socket:
    sub = ctx.socket(zmq.SUB)
    sub.linger = 0
    if who is not None:
        configure_curve_client(sub, load_secret_key(keys[who].secret), load_public_key(server_public))
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(endpoint)
    return sub


def test_curve_pub_delivers_to_the_allowed_subscriber_only(tmp_path):
    keys = {n: generate_keypair(tmp_path / "keys", n) for n in ("sink", "dashboard", "stranger")}
    cfg = _cfg(tmp_path, pub="tcp://0.0.0.0:0", pub_allowed_clients=[str(keys["dashboard"].public)])
    cfg.transport.curve.key_dir, cfg.transport.curve.key_name = str(tmp_path / "keys"), "sink"
    ctx = zmq.Context()
    try:
        pub = open_publisher(ctx, cfg)
        port = pub.getsockopt(zmq.LAST_ENDPOINT).decode().rsplit(":", 1)[1]
        endpoint = f"tcp://127.0.0.1:{port}"
        good = _subscriber(ctx, endpoint, keys, "dashboard", keys["sink"].public)
        stranger = _subscriber(ctx, endpoint, keys, "stranger", keys["sink"].public)  # right server key, not listed
        plain = _subscriber(ctx, endpoint, keys, None, None)
        received = 0
        for i in range(60):  # PUB drops until a subscription arrives: publish until the good one hears
            pub.send_multipart([b"cam", f'{{"seq":{i}}}'.encode()])
            if good.poll(50):
                received += 1
                good.recv_multipart()
                if received >= 3:
                    break
        assert received >= 3, "the listed CURVE subscriber received nothing"
        for _ in range(5):
            pub.send_multipart([b"cam", b'{"seq":-1}'])
        assert stranger.poll(300) == 0, "a subscriber whose key is not listed must receive nothing"
        assert plain.poll(100) == 0, "a plain-text subscriber must receive nothing"
    finally:
        stop_authenticator(ctx)
        ctx.destroy(0)


def _shipped_configs():
    deploy = REPO / "deploy"
    for path in sorted((deploy / "config").glob("*.yaml")):
        yield path.name, yaml.safe_load(path.read_text())
    for doc in yaml.safe_load_all((deploy / "k8s" / "configmap.yaml").read_text()):
        if doc and doc.get("kind") == "ConfigMap":
            yield "k8s configmap", yaml.safe_load(doc["data"]["config.yaml"])


@pytest.mark.parametrize("name,data", list(_shipped_configs()), ids=lambda v: v if isinstance(v, str) else "")
def test_shipped_configs_obey_the_pub_rule(name, data):
    from facestream.pipeline.transport import check_publisher

    cfg = load_config(None, overrides=data)
    if cfg.sink.pub:
        check_publisher(cfg)  # raises for a plain off-host PUB without consent
    if name == "k8s configmap":
        assert cfg.sink.pub_allowed_clients and not cfg.transport.allow_plain_tcp, "k8s exposes the PUB: CURVE"
