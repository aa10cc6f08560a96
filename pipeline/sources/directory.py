"""A directory of images, read in sorted name order. Files that are not readable images are skipped,
logged and counted (``facestream_source_skipped_files_total``)."""

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
from .metrics import FRAMES, SKIPPED_FILES, UP
from .stamping import FrameStamper, RateCap

log = logging.getLogger(__name__)


class DirectorySource(Source):
    live = False

    def __init__(self, cfg: SourceConfig) -> None:
        self.cfg = cfg
        self.stream_id = cfg.id
        self.path = Path(cfg.uri).expanduser()
        if not self.path.is_dir():
            raise FacestreamError(f"source {cfg.id!r}: image directory not found: {cfg.uri}")
        self._closed = threading.Event()
        self._skips = FailureLog(log, self.stream_id, every=100)

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
                for path in sorted(p for p in self.path.iterdir() if p.is_file()):
                    if self._closed.is_set():
                        return
                    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
                    if image is None:
                        SKIPPED_FILES.labels(self.stream_id).inc()
                        self._skips.failed("skip", "skipped %s: not a readable image", path.name)
                        continue
                    if self._closed.wait(rate.wait_s()):
                        return
                    frames.inc()
                    produced += 1
                    yield stamper.stamp(image)
                    if self.cfg.max_frames and stamper.next_index >= self.cfg.max_frames:
                        return
                if produced == 0:
                    log.warning("stream %s: no readable images in %s", self.stream_id, self.path)
                if not self.cfg.loop or produced == 0:
                    return
        finally:
            UP.labels(self.stream_id).set(0)
