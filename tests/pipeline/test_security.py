"""CURVE over real ZeroMQ sockets: an allowed client receives, an unknown one is refused and counted;
key files are written 0600 and loaded back; plain tcp:// off-host needs an explicit opt-in."""

from __future__ import annotations

import os
import stat
import uuid

import pytest
import zmq
from prometheus_client import REGISTRY

from facestream.errors import FacestreamError
from facestream.pipeline.cli import main as cli_main
from facestream.pipeline.security import (
    configure_curve_client,
    configure_curve_server,
    generate_keypair,
    load_allowed_keys,
    load_public_key,
    load_secret_key,
    require_secure_endpoint,
    stop_authenticator,
)


@pytest.fixture
def context():
    ctx = zmq.Context()
    yield ctx
    stop_authenticator(ctx)
    ctx.destroy(linger=0)


@pytest.fixture
def keys(tmp_path):
    return {name: generate_keypair(tmp_path, name) for name in ("server", "camera", "intruder")}


def _failures(name: str) -> float:
    return REGISTRY.get_sample_value("facestream_transport_auth_failures_total", {"stage": name}) or 0.0


def _server(context, keys, name: str) -> tuple[zmq.Socket, str]:
    server = context.socket(zmq.PUSH)
    server.linger = 0
    server.sndtimeo = 2000  # a send with no authenticated peer must fail the test, not hang it
    configure_curve_server(server, load_secret_key(keys["server"].secret),
                           load_allowed_keys([keys["camera"].public]), name=name)
    port = server.bind_to_random_port("tcp://127.0.0.1")
    return server, f"tcp://127.0.0.1:{port}"


def _client(context, keys, who: str, endpoint: str, server_key: bytes | None = None) -> zmq.Socket:
    client = context.socket(zmq.PULL)
    client.linger = 0
    configure_curve_client(client, load_secret_key(keys[who].secret),
                           server_key or load_public_key(keys["server"].public))
    client.connect(endpoint)
    return client


def test_allowed_client_receives_unknown_client_is_refused_and_counted(context, keys):
    name = f"link-{uuid.uuid4().hex[:6]}"
    server, endpoint = _server(context, keys, name)
    intruder = _client(context, keys, "intruder", endpoint)
    # The intruder's handshake is refused by the ZAP handler before any message can reach it.
    deadline_polls = 50
    while _failures(name) < 1 and deadline_polls:
        intruder.poll(100)
        deadline_polls -= 1
    assert _failures(name) >= 1
    camera = _client(context, keys, "camera", endpoint)
    for i in range(3):
        server.send(f"frame {i}".encode())
    assert camera.poll(5000), "the allowed client received nothing"
    assert [camera.recv() for _ in range(3)] == [b"frame 0", b"frame 1", b"frame 2"]
    assert intruder.poll(300) == 0, "a refused client must never receive"
    assert _failures(name) >= 1


def test_plaintext_client_gets_nothing(context, keys):
    server, endpoint = _server(context, keys, f"plain-{uuid.uuid4().hex[:6]}")
    plain = context.socket(zmq.PULL)
    plain.linger = 0
    plain.connect(endpoint)
    assert server.poll(500, zmq.POLLOUT) == 0, "no peer may complete a handshake without CURVE"
    assert plain.poll(200) == 0


def test_client_with_wrong_server_key_gets_nothing(context, keys):
    server, endpoint = _server(context, keys, f"wrongkey-{uuid.uuid4().hex[:6]}")
    fooled = _client(context, keys, "camera", endpoint, server_key=load_public_key(keys["intruder"].public))
    assert server.poll(500, zmq.POLLOUT) == 0, "a client that does not know the server key must not connect"
    assert fooled.poll(200) == 0


def test_key_files_mode_and_round_trip(tmp_path):
    files = generate_keypair(tmp_path / "k", "node1")
    assert stat.S_IMODE(files.secret.stat().st_mode) == 0o600
    secret = load_secret_key(files.secret)
    assert zmq.curve_public(secret) == load_public_key(files.public)
    assert load_public_key(files.public.read_text().strip()) == load_public_key(files.public)
    with pytest.raises(FacestreamError, match="already exists"):
        generate_keypair(tmp_path / "k", "node1")
    os.chmod(files.secret, 0o644)
    with pytest.raises(FacestreamError, match="chmod 600"):
        load_secret_key(files.secret)


def test_zmq_certificate_files_are_accepted(tmp_path):
    public_file, _secret_file = zmq.auth.create_certificates(str(tmp_path), "zmqcert")
    expected, _ = zmq.auth.load_certificate(public_file)
    assert load_public_key(public_file) == expected


def test_allowed_keys_from_directory_and_bad_entries(tmp_path):
    a = generate_keypair(tmp_path / "allowed", "a")
    b = generate_keypair(tmp_path / "allowed", "b")
    assert load_allowed_keys([tmp_path / "allowed"]) == {load_public_key(a.public), load_public_key(b.public)}
    with pytest.raises(FacestreamError, match="neither"):
        load_allowed_keys(["not-a-key"])
    (tmp_path / "bad.public").write_text("hello\n")
    with pytest.raises(FacestreamError, match="no z85 public key"):
        load_public_key(tmp_path / "bad.public")


@pytest.mark.parametrize(
    ("endpoint", "curve", "allow_plaintext", "ok"),
    [
        ("ipc:///tmp/facestream-capture", False, False, True),
        ("tcp://127.0.0.1:5555", False, False, True),
        ("tcp://localhost:5555", False, False, True),
        ("tcp://10.0.0.7:5555", True, False, True),
        ("tcp://10.0.0.7:5555", False, True, True),
        ("tcp://10.0.0.7:5555", False, False, False),
        ("tcp://*:5555", False, False, False),
    ],
)
def test_plaintext_off_host_needs_explicit_opt_in(endpoint, curve, allow_plaintext, ok):
    if ok:
        require_secure_endpoint(endpoint, curve, allow_plaintext)
    else:
        with pytest.raises(FacestreamError, match="without CURVE"):
            require_secure_endpoint(endpoint, curve, allow_plaintext)


def test_keys_gen_command(tmp_path, capsys):
    assert cli_main(["keys", "gen", "--out", str(tmp_path), "--name", "edge1"]) == 0
    out = capsys.readouterr().out
    public = load_public_key(tmp_path / "edge1.public")
    assert public.decode() in out
    assert stat.S_IMODE((tmp_path / "edge1.secret").stat().st_mode) == 0o600
    assert cli_main(["keys", "gen", "--out", str(tmp_path), "--name", "edge1"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_context_can_be_terminated_after_stop_authenticator(keys):
    ctx = zmq.Context()
    server = ctx.socket(zmq.PUSH)
    configure_curve_server(server, load_secret_key(keys["server"].secret), [load_public_key(keys["camera"].public)])
    server.close(linger=0)
    stop_authenticator(ctx)
    ctx.term()  # would wait for ever on the ZAP handler's socket without stop_authenticator
    stop_authenticator(ctx)  # idempotent
