"""The ``demo`` source: a moving clip built at run time from scikit-image's ``astronaut()`` photo.

The camera pans and zooms slowly over the photo (150 frames of 640x360), identically on every run, so tests
and the default pipeline have a real face to find. ``face_box(index)`` gives the face's ground-truth box in
each frame: the box dlib's HOG detector finds on the original photo, (175, 76, 265, 166), widened a little
to cover forehead and chin.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator

import cv2
import numpy as np

from .base import Source, SourceFrame
from .config import SourceConfig
from .metrics import FRAMES, UP
from .stamping import FrameStamper, RateCap

WIDTH, HEIGHT = 640, 360
CLIP_FRAMES = 150
FACE_BOX_PHOTO = (170.0, 64.0, 270.0, 176.0)  # x1, y1, x2, y2 in the 512x512 photo


def _photo_bgr() -> np.ndarray:
    from skimage.data import astronaut

    return cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR)


def _view(index: int) -> tuple[float, float, float]:
    """(x0, y0, scale) of the camera at clip frame ``index``: eases from the whole photo's upper part to
    a closer view of the face, then back, so a looped clip has no jump."""
    phase = (index % CLIP_FRAMES) / CLIP_FRAMES
    s = 0.5 - 0.5 * math.cos(2.0 * math.pi * phase)  # 0 -> 1 -> 0
    crop_w = 512.0 - 150.0 * s
    return 60.0 * s, 40.0 * s, WIDTH / crop_w


class DemoSource(Source):
    live = False

    def __init__(self, cfg: SourceConfig) -> None:
        self.cfg = cfg
        self.stream_id = cfg.id
        self._closed = threading.Event()
        self._photo: np.ndarray | None = None

    def close(self) -> None:
        self._closed.set()

    @staticmethod
    def render(index: int, photo: np.ndarray | None = None) -> np.ndarray:
        """Clip frame ``index`` as 360x640x3 uint8 BGR (deterministic)."""
        photo = _photo_bgr() if photo is None else photo
        x0, y0, scale = _view(index)
        warp = np.array([[scale, 0.0, -x0 * scale], [0.0, scale, -y0 * scale]], dtype=np.float64)
        return cv2.warpAffine(photo, warp, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)

    @staticmethod
    def face_box(index: int) -> tuple[float, float, float, float]:
        """Ground-truth (x1, y1, x2, y2) of the astronaut's face in clip frame ``index`` (pixels)."""
        x0, y0, scale = _view(index)
        x1, y1, x2, y2 = FACE_BOX_PHOTO
        return ((x1 - x0) * scale, (y1 - y0) * scale, (x2 - x0) * scale, (y2 - y0) * scale)

    def frames(self) -> Iterator[SourceFrame]:
        photo = _photo_bgr()
        stamper = FrameStamper(self.stream_id, self.cfg.resize)
        rate = RateCap(self.cfg.max_fps)
        frames = FRAMES.labels(self.stream_id)
        total = None if self.cfg.loop else CLIP_FRAMES
        if self.cfg.max_frames:
            total = self.cfg.max_frames if total is None else min(total, self.cfg.max_frames)
        self.expected_frames = total
        UP.labels(self.stream_id).set(1)
        try:
            index = 0
            while not self._closed.is_set() and (total is None or index < total):
                if self._closed.wait(rate.wait_s()):
                    return
                frames.inc()
                yield stamper.stamp(self.render(index, photo))
                index += 1
        finally:
            UP.labels(self.stream_id).set(0)
