"""A video file read with OpenCV's FFmpeg backend. Truncated or corrupt files end the stream cleanly,
with a log line and ``facestream_source_decode_errors_total``."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2

from engines.errors import FacestreamError

from .base import Source, SourceFrame
from .config import SourceConfig
from .failure_log import FailureLog
from .metrics import DECODE_ERRORS, FRAMES, UP
from .stamping import FrameStamper, RateCap

log = logging.getLogger(__name__)

_MAX_RETRIES = 25  # consecutive failed reads before a file that claims more frames is taken as ended


class FileSource(Source):
    live = False

    def __init__(self, cfg: SourceConfig) -> None:
        self.cfg = cfg
        self.stream_id = cfg.id
        self.path = Path(cfg.uri).expanduser()
        if not self.path.is_file():
            raise FacestreamError(f"source {cfg.id!r}: video file not found: {cfg.uri}")
        self._closed = threading.Event()
        self._failures = FailureLog(log, self.stream_id, every=100)

    def close(self) -> None:
        self._closed.set()

    def frames(self) -> Iterator[SourceFrame]:
        stamper = FrameStamper(self.stream_id, self.cfg.resize)
        rate = RateCap(self.cfg.max_fps)
        frames = FRAMES.labels(self.stream_id)
        UP.labels(self.stream_id).set(1)
        try:
            while not self._closed.is_set():
                produced = 0
                for image in self._decode_once():
                    if self._closed.wait(rate.wait_s()):
                        return
                    frames.inc()
                    produced += 1
                    yield stamper.stamp(image)
                    if self.cfg.max_frames and stamper.next_index >= self.cfg.max_frames:
                        return
                if not self.cfg.loop or produced == 0:
                    return
        finally:
            UP.labels(self.stream_id).set(0)

    def _decode_once(self) -> Iterator:
        """Decoded images of one pass over the file; a short or unreadable file is logged and counted."""
        cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        try:
            if not cap.isOpened():
                DECODE_ERRORS.labels(self.stream_id).inc()
                log.error("stream %s: cannot decode %s (corrupt, truncated or not a video); stream ends",
                          self.stream_id, self.path)
                return
            expected = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            read = failed = pending = 0
            while not self._closed.is_set():
                ok, image = cap.read()
                if ok and image is not None:
                    if pending:  # the decoder skipped corrupt frames and found good ones again
                        failed += pending
                        DECODE_ERRORS.labels(self.stream_id).inc(pending)
                        self._failures.failed("decode", "%d undecodable frame(s) before frame %d of %s; skipped",
                                              pending, read + failed, self.path)
                        pending = 0
                    read += 1
                    yield image
                elif expected and read + failed + pending < expected and pending < _MAX_RETRIES:
                    pending += 1  # mid-file: try the next frame; only an end of file stops the stream
                else:
                    break
            if not self._closed.is_set() and (read == 0 or read + failed < expected * 0.98 - 1):
                DECODE_ERRORS.labels(self.stream_id).inc()
                log.error("stream %s: %s ended after %d of %d frames (truncated or corrupt); stream ends",
                          self.stream_id, self.path, read, expected)
        finally:
            cap.release()
