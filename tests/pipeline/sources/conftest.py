"""Source test fixtures: the RTSP test server (tests/support/rtsp.py) and small helpers."""

from __future__ import annotations

import sys
from pathlib import Path

_REPO = str(Path(__file__).resolve().parents[3])
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from tests.support.rtsp import rtsp_server, rtsp_server_factory  # noqa: E402,F401
