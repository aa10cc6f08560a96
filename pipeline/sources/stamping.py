"""Turning decoded images into SourceFrames: index, capture timestamps, size checks, resize, frame-rate cap."""

from __future__ import annotations

import logging
import time

import cv2
import numpy as np

from .base import SourceFrame
from .config import ResizeConfig
from .metrics import RESOLUTION_CHANGES

log = logging.getLogger(__name__)


def as_bgr(image: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 BGR from what decoders return (grey, BGRA, 16-bit)."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image.astype(np.float32) * 255.0, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return image


def output_size(width: int, height: int, resize: ResizeConfig) -> tuple[int, int]:
    """(width, height) after resize; a missing side keeps the aspect ratio."""
    if resize.width and resize.height:
        return resize.width, resize.height
    if resize.width:
        return resize.width, max(1, round(height * resize.width / width))
    assert resize.height is not None
    return max(1, round(width * resize.height / height)), resize.height


class FrameStamper:
    """Numbers frames for one stream (across reconnects and loops), notices size changes, resizes."""

    def __init__(self, stream_id: str, resize: ResizeConfig | None = None) -> None:
        self.stream_id = stream_id
        self.next_index = 0
        self.size: tuple[int, int] | None = None  # (width, height) of the last decoded image
        self._resize = resize

    def stamp(self, image: np.ndarray, wall_ns: int | None = None, mono_ns: int | None = None) -> SourceFrame:
        wall_ns = time.time_ns() if wall_ns is None else wall_ns
        mono_ns = time.monotonic_ns() if mono_ns is None else mono_ns
        image = as_bgr(image)
        height, width = image.shape[:2]
        if self.size is not None and self.size != (width, height):
            RESOLUTION_CHANGES.labels(self.stream_id).inc()
            log.warning(
                "stream %s: resolution changed from %dx%d to %dx%d at frame %d",
                self.stream_id, *self.size, width, height, self.next_index,
            )
        self.size = (width, height)
        if self._resize is not None:
            out_w, out_h = output_size(width, height, self._resize)
            if (out_w, out_h) != (width, height):
                image = cv2.resize(image, (out_w, out_h), interpolation=cv2.INTER_AREA)
        frame = SourceFrame(image=np.ascontiguousarray(image), index=self.next_index, wall_ns=wall_ns, mono_ns=mono_ns)
        self.next_index += 1
        return frame


class RateCap:
    """max_fps for one stream. Live sources ask ``admit()`` (skip frames that come too soon); files ask
    ``wait_s()`` (sleep so playback runs at max_fps)."""

    def __init__(self, max_fps: float | None) -> None:
        self._period_ns = int(1e9 / max_fps) if max_fps else 0
        self._next_ns = 0

    def admit(self, mono_ns: int) -> bool:
        if not self._period_ns:
            return True
        # 10% tolerance so a 30 fps camera capped at 10 keeps every third frame despite jitter.
        if mono_ns < self._next_ns - self._period_ns // 10:
            return False
        self._next_ns = max(self._next_ns, mono_ns - self._period_ns) + self._period_ns
        return True

    def wait_s(self) -> float:
        """Seconds to sleep before the next frame is due (and books that frame's slot)."""
        if not self._period_ns:
            return 0.0
        now = time.monotonic_ns()
        if self._next_ns < now - self._period_ns:  # fell behind (slow consumer): do not burst to catch up
            self._next_ns = now
        wait = max(0, self._next_ns - now) / 1e9
        self._next_ns += self._period_ns
        return wait
