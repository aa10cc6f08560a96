"""The live view: a thread subscribed to the sink's preview feed keeps the latest frame of each camera, and
``/live/CAMERA.mjpg`` streams them to a browser as ``multipart/x-mixed-replace`` (one JPEG part per new frame).

The feed's publisher is a peer: every message is checked (:func:`~facestream.pipeline.preview.decode_preview`),
bad ones are dropped and counted (``preview_malformed``). The pictures come annotated and, with
``privacy.blur_unknown``, already blurred: the web app never decodes or draws on them.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass

import zmq
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from ..metrics import WEB_REJECTED
from ..preview import PreviewFrame, decode_preview

log = logging.getLogger("facestream.web")
BOUNDARY = "facestream-frame"
STALE_S = 5.0  # a camera with no frame for this long shows as stale in /api/live


@dataclass
class Latest:
    frame: PreviewFrame
    received: float  # time.monotonic() when it arrived
    number: int  # frames received for this camera so far


class PreviewHub:
    """Subscribes to ``endpoint`` in a daemon thread; :meth:`latest` is safe from any thread."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self._frames: dict[str, Latest] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.received = 0
        self.rejected = 0
        self.streams = 0  # MJPEG responses being served now

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="web-preview", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)

    def _run(self) -> None:
        ctx = zmq.Context.instance()
        sock = ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVHWM, 16)
        sock.setsockopt(zmq.MAXMSGSIZE, (8 << 20) + (128 << 10))  # the feed's own limits, plus framing
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        try:
            sock.connect(self.endpoint)  # ipc:// connects before the sink binds; zmq reconnects
        except zmq.ZMQError as exc:
            log.error("web: live view unavailable: cannot connect to %s: %s", self.endpoint, exc)
            sock.close(0)
            return
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                if not poller.poll(200):
                    continue
                try:
                    parts = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    continue
                self._accept(parts)
        finally:
            sock.close(0)

    def _accept(self, parts: list[bytes]) -> None:
        frame = decode_preview(parts)
        if frame is None:
            self.rejected += 1
            WEB_REJECTED.labels("preview_malformed").inc()
            return
        with self._lock:
            before = self._frames.get(frame.stream)
            self._frames[frame.stream] = Latest(frame, time.monotonic(), (before.number if before else 0) + 1)
            self.received += 1

    def latest(self, camera: str) -> Latest | None:
        with self._lock:
            return self._frames.get(camera)

    def cameras(self) -> list[str]:
        with self._lock:
            return sorted(self._frames)

    def summary(self, configured: list[str]) -> list[dict]:
        """One row per camera (configured or heard from): the last header's figures and how old it is."""
        now = time.monotonic()
        rows = []
        for camera in dict.fromkeys([*configured, *self.cameras()]):
            item = self.latest(camera)
            row: dict = {"camera": camera, "url": f"/live/{camera}.mjpg", "frames": 0, "age_s": None, "live": False}
            if item is not None:
                h = item.frame.header
                row.update(frames=item.number, age_s=round(now - item.received, 3), live=now - item.received < STALE_S)
                for key in ("seq", "ts_ns", "fps", "latency_ms", "dropped", "width", "height"):
                    value = h.get(key)
                    row[key] = value if isinstance(value, int | float) and not isinstance(value, bool) else None
                faces = h.get("faces")
                row["faces"] = [
                    {"identity": str(f.get("identity")), "track": f.get("track")}
                    for f in (faces if isinstance(faces, list) else [])[:64] if isinstance(f, dict)
                ]
            rows.append(row)
        return rows


def _part(jpeg: bytes) -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
            + jpeg + b"\r\n")


async def mjpeg(request: Request) -> Response:
    """``/live/{camera}.mjpg``: the camera's latest frame now (when there is one), then each new one."""
    hub: PreviewHub = request.app.state.hub
    camera = request.path_params["camera"]
    if not camera or not camera.isprintable() or len(camera) > 128:
        return JSONResponse({"error": "bad camera name"}, status_code=400)
    max_fps = max(1.0, float(request.app.state.cfg.web.preview_fps or 5.0))

    async def frames():
        sent = -1
        idle = 0.0
        hub.streams += 1
        try:
            while True:
                item = hub.latest(camera)
                if item is not None and item.number != sent:
                    sent, idle = item.number, 0.0
                    yield _part(item.frame.jpeg)
                    await asyncio.sleep(1.0 / max_fps / 2)
                    continue
                await asyncio.sleep(0.05)
                idle += 0.05
                if idle >= 1.0:  # nothing new for a while: notice a client that went away
                    idle = 0.0
                    if await request.is_disconnected():
                        return
        finally:
            hub.streams -= 1

    return StreamingResponse(frames(), media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                             headers={"cache-control": "no-store", "x-accel-buffering": "no"})


async def snapshot(request: Request) -> Response:
    """``/live/{camera}.jpg``: the latest frame once (404 while there is none)."""
    item = request.app.state.hub.latest(request.path_params["camera"])
    if item is None:
        return JSONResponse({"error": "no frame from this camera yet"}, status_code=404)
    return Response(item.frame.jpeg, media_type="image/jpeg", headers={"cache-control": "no-store"})
