"""A directory of images, read in sorted name order. Files that are not readable images are skipped,
logged and counted (``facestream_source_skipped_files_total``). Each frame carries its file name; the
source is ``stills`` by default (every image identified on its own, docs/sources.md)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import cv2

from .config import SourceConfig
from .failure_log import FailureLog
from .finite import FiniteSource
from .metrics import SKIPPED_FILES

log = logging.getLogger(__name__)


class DirectorySource(FiniteSource):
    what = "image directory"

    def __init__(self, cfg: SourceConfig) -> None:
        super().__init__(cfg)
        self._skips = FailureLog(log, self.stream_id, every=100)

    @staticmethod
    def _exists(path: Path) -> bool:
        return path.is_dir()

    def _empty_pass(self) -> None:
        log.warning("stream %s: no readable images in %s", self.stream_id, self.path)

    def _one_pass(self) -> Iterator:
        paths = sorted(p for p in self.path.iterdir() if p.is_file())
        self._expect(len(paths))
        for path in paths:
            if self._closed.is_set():
                return
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                SKIPPED_FILES.labels(self.stream_id).inc()
                self._skips.failed("skip", "skipped %s: not a readable image", path.name)
                continue
            yield image, path.name
