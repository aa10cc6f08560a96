"""Pytest fixtures around ``tests/support/rtsp_server.py``: a real GStreamer RTSP server as a subprocess on
a free loopback port, which tests can kill, restart (same port, other resolution) or put in stall mode.

The server needs Debian's /usr/bin/python3 with python3-gi, gir1.2-gst-rtsp-server-1.0 and x264enc
(gstreamer1.0-plugins-ugly); without them the fixtures skip and say which part is missing.
"""

from __future__ import annotations

import functools
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SYSTEM_PYTHON = os.environ.get("FACESTREAM_GST_PYTHON", "/usr/bin/python3")
SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
_PROBE = (
    "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0');"
    "from gi.repository import Gst, GstRtspServer; Gst.init(None);"
    "missing = [e for e in ('videotestsrc', 'x264enc', 'rtph264pay', 'valve') if not Gst.ElementFactory.find(e)];"
    "print(' '.join(missing))"
)


@functools.cache
def missing_reason(python: str = SYSTEM_PYTHON) -> str | None:
    """Why the RTSP server cannot run with ``python`` here, or None if it can."""
    if not Path(python).exists():
        return f"{python} not found (Debian python3 with python3-gi runs the RTSP test server)"
    try:
        probe = subprocess.run([python, "-c", _PROBE], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "probing GStreamer timed out"
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        return f"GStreamer RTSP server unavailable ({last}); apt install python3-gi gir1.2-gst-rtsp-server-1.0"
    if probe.stdout.strip():
        return f"GStreamer elements missing: {probe.stdout.strip()} (apt install gstreamer1.0-plugins-ugly/-good)"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RtspServer:
    """One RTSP server subprocess on 127.0.0.1:port; ``url`` is rtsp://127.0.0.1:PORT/test."""

    def __init__(self, port: int, mode: str = "normal", width: int = 320, height: int = 240, fps: int = 25,
                 stall_after_frames: int = 50, resize_after_frames: int = 0, resize_width: int = 480,
                 resize_height: int = 360, file: str = "") -> None:
        self.port = port
        self.settings = {"mode": mode, "width": width, "height": height, "fps": fps, "file": file,
                         "stall_after_frames": stall_after_frames, "resize_after_frames": resize_after_frames,
                         "resize_width": resize_width, "resize_height": resize_height}
        self.proc: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self._stderr = tempfile.TemporaryFile(mode="w+")

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/test"

    def start(self, timeout_s: float = 15.0, **changes: object) -> RtspServer:
        self.settings.update(changes)
        s = self.settings
        cmd = [
            SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port), "--mode", str(s["mode"]),
            "--width", str(s["width"]), "--height", str(s["height"]), "--fps", str(s["fps"]),
            "--stall-after-frames", str(s["stall_after_frames"]),
            "--resize-after-frames", str(s["resize_after_frames"]), "--resize-width", str(s["resize_width"]),
            "--resize-height", str(s["resize_height"]),
            *(["--file", str(s["file"])] if s["file"] else []),
        ]
        deadline = time.monotonic() + timeout_s
        while True:  # the port may still be held briefly by the previous instance after a kill
            self.lines = []
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._stderr, text=True,
                                         start_new_session=True)
            threading.Thread(target=self._drain, args=(self.proc,), daemon=True).start()
            if self.wait_for_line("READY", max(0.1, deadline - time.monotonic())):
                return self
            self.kill()
            if time.monotonic() > deadline:
                self._stderr.seek(0)
                raise RuntimeError(f"RTSP test server did not start: {self._stderr.read()[-2000:]}")
            time.sleep(0.2)

    def _drain(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if proc is self.proc:
                self.lines.append(line.strip())

    def wait_for_line(self, prefix: str, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(line.startswith(prefix) for line in self.lines):
                return True
            if self.proc is None or self.proc.poll() is not None:
                return False
            time.sleep(0.02)
        return False

    def kill(self) -> None:
        """SIGKILL, as a crashing camera would go: no RTSP teardown."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def restart(self, **changes: object) -> RtspServer:
        self.kill()
        return self.start(**changes)

    def close(self) -> None:
        self.kill()
        self._stderr.close()


@pytest.fixture
def rtsp_server_factory() -> Iterator:
    """``factory(mode=..., width=..., height=..., start=True)`` -> RtspServer on a fresh free port; all
    servers are killed at teardown."""
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    servers: list[RtspServer] = []

    def factory(start: bool = True, **settings: object) -> RtspServer:
        server = RtspServer(free_port(), **settings)  # type: ignore[arg-type]
        servers.append(server)
        return server.start() if start else server

    yield factory
    for server in servers:
        server.close()


@pytest.fixture
def rtsp_server(rtsp_server_factory) -> RtspServer:
    """A running RTSP server streaming 320x240 at 25 fps."""
    return rtsp_server_factory()
