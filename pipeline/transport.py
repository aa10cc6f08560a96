"""ZeroMQ sockets between stages: PUSH (sender connects) -> PULL (receiver binds), bounded everywhere.

Flow control lives here: every socket has a high-water mark, senders use ``IMMEDIATE`` so nothing queues
towards a peer that is not connected (a restarted peer gets fresh frames, not a stale backlog), and
``LINGER`` is short so a stopping stage never hangs on unsent messages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import zmq

from facestream.errors import FacestreamError

from . import security
from .config import PipelineConfig
from .security import require_secure_endpoint

log = logging.getLogger(__name__)


def check_endpoint(endpoint: str, cfg: PipelineConfig, what: str) -> None:
    """Refuse endpoints that are malformed, or plain tcp:// off this host without CURVE or explicit consent."""
    if endpoint.startswith("ipc://"):
        if len(endpoint) - 6 > 100:
            raise FacestreamError(f"{what}: ipc path too long (max ~100 chars): {endpoint}")
        return
    if not endpoint.startswith("tcp://"):
        raise FacestreamError(f"{what}: endpoint must start with ipc:// or tcp://, got {endpoint!r}")
    if ":" not in endpoint[6:]:
        raise FacestreamError(f"{what}: tcp endpoint needs a port, got {endpoint!r}")
    try:
        require_secure_endpoint(endpoint, cfg.transport.curve.enabled, cfg.transport.allow_plain_tcp)
    except FacestreamError as exc:
        raise FacestreamError(f"{what}: {exc}") from None


def check_publisher(cfg: PipelineConfig) -> None:
    """The hop rule for the sink's results PUB: a tcp:// bind off this host is CURVE (subscribers are CURVE
    clients whose keys are in ``sink.pub_allowed_clients``) or explicitly allowed (``allow_plain_tcp``)."""
    endpoint, clients = cfg.sink.pub, cfg.sink.pub_allowed_clients
    if cfg.transport.curve.enabled and not clients and not security.is_loopback_endpoint(endpoint):
        raise FacestreamError(f"sink.pub {endpoint}: transport.curve is on, so the results PUB is CURVE too: "
                              "list the subscribers' public keys in sink.pub_allowed_clients")
    if not endpoint.startswith(("ipc://", "tcp://")):
        raise FacestreamError(f"sink.pub: endpoint must start with ipc:// or tcp://, got {endpoint!r}")
    if endpoint.startswith("tcp://"):
        try:
            require_secure_endpoint(endpoint, bool(clients), cfg.transport.allow_plain_tcp)
        except FacestreamError as exc:
            raise FacestreamError(f"sink.pub: {exc} (or list subscriber keys in sink.pub_allowed_clients)") from None


def open_publisher(ctx: zmq.Context, cfg: PipelineConfig) -> zmq.Socket:
    """The sink's results PUB (bound), after :func:`check_publisher`; CURVE when subscribers are listed."""
    check_publisher(cfg)
    endpoint, clients = cfg.sink.pub, cfg.sink.pub_allowed_clients
    _prepare_ipc(endpoint)
    sock = ctx.socket(zmq.PUB)
    sock.setsockopt(zmq.SNDHWM, 1000)
    sock.setsockopt(zmq.LINGER, 0)
    if clients:
        curve = cfg.transport.curve
        if not curve.key_dir:
            raise FacestreamError("sink.pub_allowed_clients needs transport.curve.key_dir (see `facestream keys gen`)")
        key = Path(curve.key_dir).expanduser() / f"{curve.key_name}{security.SECRET_SUFFIX}"
        security.configure_curve_server(sock, security.load_secret_key(key), security.load_allowed_keys(clients),
                                        name="sink_pub")
    try:
        sock.bind(endpoint)
    except zmq.ZMQError as exc:
        sock.close(0)
        raise FacestreamError(f"sink cannot bind sink.pub {endpoint}: {exc}") from None
    return sock


def _prepare_ipc(endpoint: str) -> None:
    if endpoint.startswith("ipc://"):
        Path(endpoint[6:]).parent.mkdir(parents=True, exist_ok=True)


def _apply_curve(sock: zmq.Socket, cfg: PipelineConfig, stage: str, server: bool) -> None:
    """CURVE on a hop: the receiving stage is the server and accepts only the allowed client keys."""
    curve = cfg.transport.curve
    if not curve.enabled:
        return
    if not curve.key_dir:
        raise FacestreamError("transport.curve.enabled needs transport.curve.key_dir (see `facestream keys gen`)")
    secret = security.load_secret_key(Path(curve.key_dir).expanduser() / f"{curve.key_name}{security.SECRET_SUFFIX}")
    if server:
        security.configure_curve_server(sock, secret, security.load_allowed_keys(curve.allowed_clients), name=stage)
    else:
        server_key = cfg.hop(stage).server_public_key or curve.server_public_key
        if not server_key:
            raise FacestreamError(
                f"transport.curve: no server_public_key for the hop to {stage} "
                f"(set transport.{stage}.server_public_key or transport.curve.server_public_key)")
        security.configure_curve_client(sock, secret, security.load_public_key(server_key))


def open_receiver(ctx: zmq.Context, cfg: PipelineConfig, stage: str) -> zmq.Socket:
    """The PULL socket a stage reads its input from (bound)."""
    endpoint = cfg.bind_endpoint(stage)
    check_endpoint(endpoint, cfg, f"transport.{stage}.bind")
    _prepare_ipc(endpoint)
    sock = ctx.socket(zmq.PULL)
    sock.setsockopt(zmq.RCVHWM, cfg.hop(stage).hwm)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.MAXMSGSIZE, (cfg.transport.max_payload_mb << 20) + (2 << 20))
    _apply_curve(sock, cfg, stage, server=True)
    try:
        sock.bind(endpoint)
    except zmq.ZMQError as exc:
        sock.close(0)
        raise FacestreamError(f"stage {stage} cannot bind {endpoint}: {exc}") from None
    return sock


def open_sender(ctx: zmq.Context, cfg: PipelineConfig, downstream: str,
                before_connect: Callable[[zmq.Socket], None] | None = None) -> zmq.Socket:
    """The PUSH socket a stage sends to ``downstream`` with (connected). ``before_connect`` runs on the socket
    just before it connects: a socket monitor attached later can miss the connection event."""
    endpoint = cfg.connect_endpoint(downstream)
    check_endpoint(endpoint, cfg, f"transport.{downstream}.connect")
    _prepare_ipc(endpoint)
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.SNDHWM, cfg.hop(downstream).hwm)
    sock.setsockopt(zmq.IMMEDIATE, 1)
    sock.setsockopt(zmq.LINGER, 500)
    sock.setsockopt(zmq.RECONNECT_IVL, 100)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
    _apply_curve(sock, cfg, downstream, server=False)
    if before_connect is not None:
        before_connect(sock)
    sock.connect(endpoint)
    return sock
