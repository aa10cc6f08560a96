"""The source contract: a Source yields SourceFrames until its end (files) or until close() (live)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass
class SourceFrame:
    image: np.ndarray  # HxWx3 uint8 BGR
    index: int  # frame index from this source, monotonically increasing (restarts do not reset it)
    wall_ns: int  # time.time_ns() at capture
    mono_ns: int  # time.monotonic_ns() at capture
    name: str | None = None  # an image folder's file name of this frame


class Source(ABC):
    """A video source. ``live`` sources (camera/RTSP/HTTP) reconnect until close(); others end at EOF."""

    stream_id: str
    live: bool
    expected_frames: int | None = None  # frames the source says it will yield (None: unknown or endless)

    @abstractmethod
    def frames(self) -> Iterator[SourceFrame]:
        """Yield frames; file/dir/demo end at EOF, live sources reconnect until close()."""

    @abstractmethod
    def close(self) -> None:
        """Thread-safe; makes frames() return promptly."""

    def skip_nonref(self, on: bool) -> None:
        """Skip decoding non-reference frames while ``on`` (sources/decode_pace.py); sources that cannot, or
        must not lose frames, ignore it."""
        return None

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
