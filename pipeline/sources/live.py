"""Live sources (webcam, RTSP, HTTP) that never give up: reconnect with exponential backoff and jitter,
detect stalls with a watchdog, and keep only the newest frames when the consumer falls behind.

Threads: a supervisor per source, and one reader per connection attempt. The reader owns its VideoCapture
(open, read, release). A read stuck inside FFmpeg cannot be interrupted from Python, so the supervisor never
waits on it: it watches how long the current read has been running and, past ``read_timeout_s``, counts a
stall, abandons that reader and connects afresh. The abandoned reader releases its capture as soon as the
read returns, which OpenCV's own read timeout (the same ``read_timeout_s``) guarantees for FFmpeg.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import cv2

from .backoff import Backoff
from .base import Source, SourceFrame
from .capture_open import open_live_capture, uses_pyav
from .config import SourceConfig
from .failure_log import FailureLog
from .frame_buffer import FrameBuffer
from .metrics import DECODE_SKIPPING, DROPPED, FRAMES, RECONNECTS, STALLS, UP
from .stamping import FrameStamper, RateCap
from .uri import mask_uri, redact

log = logging.getLogger(__name__)

_WATCH_PERIOD_S = 0.05
_READER_JOIN_S = 0.2  # how long close() waits for the current reader before leaving it to finish alone
# FFmpeg's own open timeout (the same open_timeout_s) usually ends a slow open first, and may still succeed
# with what it probed; the watchdog abandons the attempt only if that did not happen within this grace.
_OPEN_GRACE_S = 1.0
# Abandoned readers still stuck in a read (FFmpeg always returns; a broken driver might not). Past this
# many, no new connection is started until one finishes, so threads cannot pile up.
_MAX_STUCK_READERS = 4


class _Reader(threading.Thread):
    """One connection: open, read until told to stop or the stream fails, release."""

    def __init__(self, name: str, open_capture: Callable[[], cv2.VideoCapture],
                 deliver: Callable[[_Reader, object, int, int], None], read_timeout_s: float) -> None:
        super().__init__(name=name, daemon=True)
        self._open_capture = open_capture
        self._deliver = deliver
        self._read_timeout_s = read_timeout_s
        self.abandoned = threading.Event()
        self.opened = threading.Event()
        self.started_mono = time.monotonic()
        self.reading_since: float | None = None  # monotonic start of the read in progress
        self.images = 0
        self.failure: tuple[str, str] | None = None  # (kind, message) once the connection has ended

    def run(self) -> None:
        try:
            cap = self._open_capture()
        except Exception as exc:  # a backend error is a failed attempt, never a dead supervisor
            self.failure = ("open", f"cannot open: {exc}")
            return
        try:
            if not cap.isOpened():
                self.failure = ("open", "cannot open (unreachable, refused or timed out)")
                return
            self.opened.set()
            while not self.abandoned.is_set():
                self.reading_since = start = time.monotonic()
                ok, image = cap.read()
                self.reading_since = None
                wall_ns, mono_ns = time.time_ns(), time.monotonic_ns()
                if self.abandoned.is_set():
                    return
                if not ok or image is None:
                    if time.monotonic() - start >= 0.9 * self._read_timeout_s:
                        self.failure = ("stall", f"no frame for {self._read_timeout_s:g}s (read timeout)")
                    else:
                        self.failure = ("ended", "stream ended or read failed")
                    return
                self.images += 1
                self._deliver(self, image, wall_ns, mono_ns)
        finally:
            cap.release()

    def abandon(self) -> None:
        self.abandoned.set()


class LiveSource(Source):
    """A webcam, RTSP or HTTP stream. frames() yields until close() (or max_frames); it reconnects for ever."""

    live = True

    def __init__(self, cfg: SourceConfig, open_capture: Callable[[SourceConfig], cv2.VideoCapture] | None = None,
                 backoff: Backoff | None = None) -> None:
        self.cfg = cfg
        self.stream_id = cfg.id
        self._open_capture = open_capture or open_live_capture
        self.decoder = "pyav" if uses_pyav(cfg) else "opencv"  # raises if pyav is asked for but missing
        if self.decoder == "opencv" and cfg.kind in ("rtsp", "http"):
            log.info("stream %s: reading with OpenCV; install PyAV (pip install av) to see mid-stream "
                     "resolution changes instead of frames rescaled to the first size", cfg.id)
        self._backoff = backoff or Backoff(cfg.reconnect_min_s, cfg.reconnect_max_s, cfg.reconnect_jitter)
        self._closed = threading.Event()
        self._buffer: FrameBuffer[SourceFrame] = FrameBuffer(
            cfg.queue_size, drop_oldest=cfg.policy == "latest", on_drop=DROPPED.labels(cfg.id).inc
        )
        self._stamper = FrameStamper(cfg.id, cfg.resize)
        self._rate = RateCap(cfg.max_fps)
        self._stamp_lock = threading.Lock()
        self._failures = FailureLog(log, cfg.id)
        self._supervisor: threading.Thread | None = None
        self._reader: _Reader | None = None
        self._start_lock = threading.Lock()
        self.attempts = 0  # connection attempts so far, the first included
        self.skipping = False  # the decoder skips non-reference frames (skip_nonref)

    def close(self) -> None:
        self._closed.set()
        self._buffer.finish()
        supervisor = self._supervisor
        if supervisor is not None and supervisor is not threading.current_thread():
            supervisor.join(timeout=1.0)

    def skip_nonref(self, on: bool) -> None:
        on = on and self.cfg.policy == "latest"  # a lossless live source keeps every frame
        if on != self.skipping:
            self.skipping = on
            DECODE_SKIPPING.labels(self.stream_id).set(int(on))
            log.info("stream %s: %s", self.stream_id, "the pipeline uses few of its frames: skipping non-reference "
                     "frames in the decoder" if on else "decoding every frame again")

    def _paced(self, cap: object) -> object:
        """A capture that can skip non-reference frames asks this source whether to, packet by packet."""
        if hasattr(cap, "skip_nonref"):
            cap.skip_nonref = lambda: self.skipping  # type: ignore[attr-defined]
        return cap

    def start(self) -> None:
        """Start connecting (frames() does this on first use)."""
        with self._start_lock:
            if self._supervisor is None and not self._closed.is_set():
                self._supervisor = threading.Thread(
                    target=self._supervise, name=f"facestream-source-{self.stream_id}", daemon=True
                )
                self._supervisor.start()

    def frames(self) -> Iterator[SourceFrame]:
        self.start()
        frames = FRAMES.labels(self.stream_id)
        delivered = 0
        try:
            while not self._closed.is_set():
                frame = self._buffer.get(timeout=0.1)
                if frame is None:
                    if self._buffer.finished:  # closed, or the supervisor died (logged)
                        return
                    continue
                frames.inc()
                delivered += 1
                yield frame
                if self.cfg.max_frames and delivered >= self.cfg.max_frames:
                    return
        finally:
            self.close()

    # -- reader side ------------------------------------------------------------------------------------

    def _deliver(self, reader: _Reader, image: object, wall_ns: int, mono_ns: int) -> None:
        with self._stamp_lock:
            if reader.abandoned.is_set() or not self._rate.admit(mono_ns):
                return
            frame = self._stamper.stamp(image, wall_ns, mono_ns)  # type: ignore[arg-type]
            if reader.images == 1:
                UP.labels(self.stream_id).set(1)
                self._failures.recovered("%s: receiving frames", self._safe_uri())
        self._buffer.put(frame, reader.abandoned)

    # -- supervisor -------------------------------------------------------------------------------------

    def _supervise(self) -> None:
        up = UP.labels(self.stream_id)
        up.set(0)
        try:
            while not self._closed.is_set():
                if not self._wait_for_stuck_readers():
                    return
                if self.attempts:
                    RECONNECTS.labels(self.stream_id).inc()
                self.attempts += 1
                reader = _Reader(
                    f"facestream-source-{self.stream_id}-reader{self.attempts}",
                    lambda: self._paced(self._open_capture(self.cfg)), self._deliver, self.cfg.read_timeout_s,
                )
                self._reader = reader
                reader.start()
                kind, message = self._watch(reader)
                reader.abandon()
                up.set(0)
                if self._closed.is_set():
                    reader.join(_READER_JOIN_S)
                    return
                if kind == "stall":
                    STALLS.labels(self.stream_id).inc()
                if reader.images:
                    self._backoff.reset()
                delay = self._backoff.next_delay()
                self._failures.failed(kind, "%s: %s; reconnecting in %.1fs", self._safe_uri(), redact(message, self.cfg.uri),
                                      delay)
                self._closed.wait(delay)
        except Exception:  # never let a bug kill the supervisor silently: log it, end frames()
            log.exception("stream %s: source supervisor failed", self.stream_id)
            self._buffer.finish()
        finally:
            up.set(0)

    def _wait_for_stuck_readers(self) -> bool:
        """Hold off while too many abandoned readers are still blocked; False once closed."""
        logged = False
        while self.reader_threads_alive >= _MAX_STUCK_READERS:
            if not logged:
                log.error("stream %s: %d readers still blocked in the decoder; waiting before reconnecting",
                          self.stream_id, self.reader_threads_alive)
                logged = True
            if self._closed.wait(0.5):
                return False
        return not self._closed.is_set()

    def _watch(self, reader: _Reader) -> tuple[str, str]:
        """Wait until ``reader``'s connection ends, stalls or fails to open (or close()); say why."""
        while not self._closed.wait(_WATCH_PERIOD_S):
            if not reader.is_alive():
                return reader.failure or ("ended", "stream ended")
            now = time.monotonic()
            if not reader.opened.is_set():
                if now - reader.started_mono > self.cfg.open_timeout_s + _OPEN_GRACE_S:
                    return ("open", f"no connection within open_timeout_s={self.cfg.open_timeout_s:g}")
                continue
            reading_since = reader.reading_since
            if reading_since is not None and now - reading_since > self.cfg.read_timeout_s:
                return ("stall", f"no frame for {self.cfg.read_timeout_s:g}s (read_timeout_s)")
        return ("closed", "closed")

    def _safe_uri(self) -> str:
        """The uri without credentials, for logs."""
        return mask_uri(self.cfg.uri)

    @property
    def reader_threads_alive(self) -> int:
        """Reader threads still running (abandoned ones finish when their read returns)."""
        prefix = f"facestream-source-{self.stream_id}-reader"
        return sum(1 for t in threading.enumerate() if t.name.startswith(prefix))
