"""Endpoint checks before any socket is made: malformed endpoints and unencrypted off-host links are refused."""

from __future__ import annotations

import pytest

from facestream.errors import FacestreamError
from facestream.pipeline.config import load_config
from facestream.pipeline.transport import check_endpoint


@pytest.mark.parametrize(
    ("endpoint", "overrides", "message"),
    [
        ("udp://1.2.3.4:5", {}, "must start with ipc:// or tcp://"),
        ("tcp://127.0.0.1", {}, "needs a port"),
        ("ipc://" + "x" * 120, {}, "ipc path too long"),
        ("tcp://10.0.0.7:5555", {}, "transport.preprocess.connect: endpoint tcp://10.0.0.7:5555 leaves this host"),
        ("tcp://*:5555", {}, "leaves this host"),
    ],
)
def test_bad_or_unsafe_endpoints_are_refused_naming_the_key(endpoint, overrides, message):
    cfg = load_config(None, environ={}, overrides=overrides)
    with pytest.raises(FacestreamError, match=message.replace("*", r"\*")):
        check_endpoint(endpoint, cfg, "transport.preprocess.connect")


@pytest.mark.parametrize("overrides", [{"transport": {"allow_plain_tcp": True}},
                                       {"transport": {"curve": {"enabled": True}}}])
def test_off_host_tcp_is_allowed_with_curve_or_explicit_consent(overrides):
    check_endpoint("tcp://10.0.0.7:5555", load_config(None, environ={}, overrides=overrides), "hop")


def test_loopback_tcp_and_ipc_need_nothing():
    cfg = load_config(None, environ={})
    check_endpoint("tcp://127.0.0.1:5555", cfg, "hop")
    check_endpoint("ipc:///tmp/facestream-x/preprocess.ipc", cfg, "hop")
