"""The RTSP test-server fixtures say precisely why they skip when GStreamer is not usable."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from tests.support.rtsp import missing_reason


def test_missing_python_is_named(tmp_path):
    reason = missing_reason(str(tmp_path / "no-python"))
    assert reason is not None and "no-python not found" in reason


@pytest.mark.skipif(importlib.util.find_spec("gi") is not None, reason="this interpreter has gi")
def test_python_without_gi_is_reported_with_the_apt_packages():
    reason = missing_reason(sys.executable)  # the project venv cannot import gi
    assert reason is not None and "gir1.2-gst-rtsp-server-1.0" in reason
