"""A video file read with OpenCV's FFmpeg backend. Truncated or corrupt files end the stream cleanly,
with a log line and ``facestream_source_decode_errors_total``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import cv2

from .config import SourceConfig
from .failure_log import FailureLog
from .finite import FiniteSource
from .metrics import DECODE_ERRORS

log = logging.getLogger(__name__)

_MAX_RETRIES = 25  # consecutive failed reads before a file that claims more frames is taken as ended


class FileSource(FiniteSource):
    what = "video file"

    def __init__(self, cfg: SourceConfig) -> None:
        super().__init__(cfg)
        self._failures = FailureLog(log, self.stream_id, every=100)

    @staticmethod
    def _exists(path: Path) -> bool:
        return path.is_file()

    def _one_pass(self) -> Iterator:
        return self._decode_once()

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
            self._expect(expected)
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
