"""What the file and image-folder sources share: a path checked up front, and a loop over passes.

A subclass yields the images of one pass (``_one_pass``); this class paces them (``max_fps``), stamps and
counts them, stops at ``max_frames``, and starts another pass when ``loop`` is set.
"""

from __future__ import annotations

import threading
from abc import abstractmethod
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from facestream.errors import FacestreamError

from .base import Source, SourceFrame
from .config import SourceConfig
from .metrics import FRAMES, UP
from .stamping import FrameStamper, RateCap


class FiniteSource(Source):
    live = False
    what = "path"  # for the not-found error: "video file", "image directory"

    def __init__(self, cfg: SourceConfig) -> None:
        self.cfg = cfg
        self.stream_id = cfg.id
        self.path = Path(cfg.uri).expanduser()
        if not self._exists(self.path):
            raise FacestreamError(f"source {cfg.id!r}: {self.what} not found: {cfg.uri}")
        self._closed = threading.Event()

    @staticmethod
    @abstractmethod
    def _exists(path: Path) -> bool: ...

    @abstractmethod
    def _one_pass(self) -> Iterator[np.ndarray | tuple[np.ndarray, str]]:
        """BGR images of one pass over the source (or (image, file name) pairs)."""

    def _empty_pass(self) -> None:
        """Called when a pass produced nothing (the stream then ends)."""

    def close(self) -> None:
        self._closed.set()

    def _expect(self, count: int) -> None:
        """The pass will yield about ``count`` images (progress); unknown when looping."""
        if not self.cfg.loop and count > 0:
            self.expected_frames = min(count, self.cfg.max_frames or count)

    def frames(self) -> Iterator[SourceFrame]:
        stamper = FrameStamper(self.stream_id, self.cfg.resize)
        rate = RateCap(self.cfg.max_fps)
        frames = FRAMES.labels(self.stream_id)
        UP.labels(self.stream_id).set(1)
        try:
            while not self._closed.is_set():
                produced = 0
                for image in self._one_pass():
                    if self._closed.wait(rate.wait_s()):
                        return
                    frames.inc()
                    produced += 1
                    image, name = image if isinstance(image, tuple) else (image, None)
                    frame = stamper.stamp(image)
                    frame.name = name
                    yield frame
                    if self.cfg.max_frames and stamper.next_index >= self.cfg.max_frames:
                        return
                if produced == 0:
                    self._empty_pass()
                if not self.cfg.loop or produced == 0:
                    return
        finally:
            UP.labels(self.stream_id).set(0)
