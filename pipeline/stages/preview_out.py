"""The sink's pictures besides the MP4: the live-view feed and the frame of each identification.

Inference forwards a stream's pixels at most ``web.preview_fps`` times a second, and with every frame that
carries an identification (inference.py). For such a frame the sink draws the faces once, blurring the faces
not in the gallery when ``privacy.blur_unknown`` is set, and

- publishes it, resized to ``web.preview_width`` and JPEG-encoded, on the live-view PUB
  (pipeline/preview.py), at most ``preview_fps`` times a second per stream. The PUB never waits: a
  subscriber that falls behind loses frames at its high-water mark (ZeroMQ drops those without telling the
  sink); a send that fails is counted (``preview_full``);
- keeps the frame of an identification as ``out_dir/frames/EVENT_ID.jpg``; the events store row names it.
"""

from __future__ import annotations

import collections
import logging
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import zmq

from facestream.errors import FacestreamError

from .. import metrics as m
from ..config import PipelineConfig
from ..preview import encode_preview
from ..security import require_secure_endpoint
from ..wire import Item
from .annotate import annotate

FPS_WINDOW_S = 5.0
PREVIEW_QUALITY = 75
FRAME_QUALITY = 90
PREVIEW_HWM = 4  # frames queued per subscriber before ZeroMQ drops: a live view wants the newest, not a backlog
FRAMES_DIR = "frames"


class Annotated:
    """One forwarded frame, drawn (and blurred) once however many outputs take it. BGR, detector-sized."""

    def __init__(self, it: Item, blur_unknown: bool):
        self.it, self.blur_unknown = it, blur_unknown
        self.scale = 1.0 if it.meta.scale is None else it.meta.scale
        self._bgr: np.ndarray | None = None

    def bgr(self) -> np.ndarray:
        if self._bgr is None:
            bgr = cv2.cvtColor(np.ascontiguousarray(self.it.data), cv2.COLOR_RGB2BGR)
            self._bgr = annotate(bgr, self.it.meta.faces or [], self.scale, self.blur_unknown, copy=False)
        return self._bgr


def check_preview_endpoint(endpoint: str, cfg: PipelineConfig) -> None:
    """The feed carries faces: ipc://, or tcp:// on loopback (off this host only with ``allow_plain_tcp``)."""
    if endpoint.startswith("ipc://"):
        return
    if not endpoint.startswith("tcp://"):
        raise FacestreamError(f"web.preview_pub: endpoint must start with ipc:// or tcp://, got {endpoint!r}")
    try:
        require_secure_endpoint(endpoint, False, cfg.transport.allow_plain_tcp)
    except FacestreamError as exc:
        raise FacestreamError(f"web.preview_pub: {exc}") from None


class PreviewOut:
    def __init__(self, cfg: PipelineConfig, out_dir: Path, log: logging.Logger):
        self.cfg, self.out_dir, self.log = cfg, out_dir, log
        fps = cfg.preview_fps()
        self.period = 1.0 / fps if fps > 0 else None
        self.width = cfg.web.preview_width
        self.blur_unknown = cfg.privacy.blur_unknown
        self.sock: zmq.Socket | None = None
        self.results: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self.last_sent: dict[str, float] = {}
        self.frame_failed = ""

    def open(self, ctx: zmq.Context) -> None:
        if self.period is None:
            return
        endpoint = self.cfg.preview_endpoint()
        check_preview_endpoint(endpoint, self.cfg)
        if endpoint.startswith("ipc://"):
            Path(endpoint[6:]).parent.mkdir(parents=True, exist_ok=True)
        sock = ctx.socket(zmq.PUB)
        sock.setsockopt(zmq.SNDHWM, PREVIEW_HWM)
        sock.setsockopt(zmq.LINGER, 0)
        try:
            sock.bind(endpoint)
        except zmq.ZMQError as exc:
            sock.close(0)
            raise FacestreamError(f"sink cannot bind web.preview_pub {endpoint}: {exc}") from None
        self.sock = sock
        self.log.info("sink: live-view frames on %s (%g per second per stream)", endpoint, 1.0 / self.period)

    def view(self, it: Item) -> Annotated | None:
        """The frame to draw from, when inference forwarded its pixels."""
        return Annotated(it, self.blur_unknown) if it.data is not None else None

    def result(self, stream: str) -> None:
        """Every result of a stream, forwarded pixels or not: the header's ``fps``."""
        now = time.monotonic()
        times = self.results[stream]
        times.append(now)
        while times and times[0] < now - FPS_WINDOW_S:
            times.popleft()

    def fps(self, stream: str) -> float:
        times = self.results.get(stream)
        if not times or len(times) < 2 or times[-1] <= times[0]:
            return 0.0
        return round((len(times) - 1) / (times[-1] - times[0]), 2)

    def save_event_frame(self, view: Annotated, event_id: str) -> str | None:
        """``frames/EVENT_ID.jpg`` (relative to out_dir), or None when it cannot be written (counted, logged
        once until it works again). Event ids are checked on receipt: no path characters."""
        rel = f"{FRAMES_DIR}/{event_id}.jpg"
        try:
            ok, jpeg = cv2.imencode(".jpg", view.bgr(), [cv2.IMWRITE_JPEG_QUALITY, FRAME_QUALITY])
            if not ok:
                raise OSError("JPEG encoding failed")
            (self.out_dir / FRAMES_DIR).mkdir(parents=True, exist_ok=True)
            (self.out_dir / rel).write_bytes(jpeg.tobytes())
        except OSError as exc:
            m.SINK_WRITE_ERRORS.labels("frame").inc()
            if not self.frame_failed:
                self.log.error("sink: cannot write event frame %s (%s)", self.out_dir / rel, exc.strerror or exc)
            self.frame_failed = "yes"
            return None
        if self.frame_failed:
            self.log.info("sink: writing event frames works again")
            self.frame_failed = ""
        m.SINK_EVENTS.labels("frame").inc()
        return rel

    def publish(self, view: Annotated | None, dropped: int) -> bool:
        """Send ``view`` on the feed unless the stream had a frame less than 1/preview_fps ago."""
        if self.sock is None or view is None or self.period is None:
            return False
        it = view.it
        now = time.monotonic()
        if now - self.last_sent.get(it.stream, -1e9) < self.period:
            return False
        self.last_sent[it.stream] = now
        bgr = view.bgr()
        h, w = bgr.shape[:2]
        f = self.width / w
        size = (self.width, max(1, round(h * f)))
        small = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
        ok, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, PREVIEW_QUALITY])
        if not ok:
            return False
        header = {
            "seq": it.seq,
            "ts_ns": it.wall_ns,
            "latency_ms": round((time.time_ns() - it.wall_ns) / 1e6, 2),
            "fps": self.fps(it.stream),
            "dropped": dropped,
            "faces": [_face(face, view.scale, f, size) for face in it.meta.faces or []],
            "width": size[0],
            "height": size[1],
        }
        try:
            self.sock.send_multipart(encode_preview(it.stream, header, jpeg.tobytes()), zmq.NOBLOCK)
        except zmq.Again:
            m.SINK_WRITE_ERRORS.labels("preview_full").inc()
            return False
        m.PREVIEW_FRAMES.labels(it.stream).inc()
        return True

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close(0)
            self.sock = None


def _face(face: Any, scale: float, f: float, size: tuple[int, int]) -> dict[str, Any]:
    x1, y1, x2, y2 = face.box_in(scale)
    w, h = size
    box = [min(max(0, round(x1 * f)), w), min(max(0, round(y1 * f)), h),
           min(max(0, round(x2 * f)), w), min(max(0, round(y2 * f)), h)]
    return {"identity": face.identity, "track": face.track, "box": box}
