"""Preprocess stage: colour conversion and resizing for the detector, batched across streams.

Frames are resized (aspect kept) to fit ``detector_width`` x ``detector_height`` and converted BGR -> RGB
(dlib and the ONNX models take RGB). A smaller frame is enlarged towards that size, at most ``max_upscale``
times (bilinear: nothing is invented, but HOG's 80 px window, 40 px at upsample 1, then covers faces of 20
source pixels in a 640x360 frame; the detector spends on it what it spends on a 720p frame). Each item
carries ``meta.scale`` so boxes map back to source pixels.
Up to ``batch_size`` frames, waiting at most ``batch_timeout_ms``, travel as one batch message. Live frames go
``live_batch`` at a time (default 1, config.live_credit): the newest frame of each stream, the stream that was
sent longest ago first, converted just before it goes; older frames of that stream are dropped as stale.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..config import PipelineConfig
from ..wire import MSG_BATCH, MSG_FRAME, Item
from .base import Stage
from .books import DropBooks
from .inlet import Inlet
from .outlet import Outlet


def detector_view(bgr: np.ndarray, max_w: int, max_h: int, max_upscale: float = 1.0) -> tuple[np.ndarray, float]:
    """BGR frame -> (RGB frame fitting max_w x max_h, scale from source to detector pixels); a smaller frame is
    enlarged to fit, by at most ``max_upscale``."""
    h, w = bgr.shape[:2]
    scale = min(max_w / w, max_h / h, max(1.0, max_upscale))
    if scale != 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR)
    if bgr.ndim == 2:
        return cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB), scale
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), scale


class PreprocessStage(Stage):
    name = "preprocess"
    accepts = (MSG_FRAME,)

    def __init__(self, cfg: PipelineConfig, outlet: Outlet | None = None, *, inlet: Inlet | None = None,
                 books: DropBooks | None = None):
        super().__init__(cfg, outlet, inlet=inlet, books=books)
        self.batch_size = cfg.preprocess.batch_size
        self.batch_timeout_s = cfg.preprocess.batch_timeout_ms / 1000.0
        self.sent_at: dict[str, int] = {}  # stream -> the send round its last live frame went in
        self.rounds = 0

    def take_batch(self) -> list[Item]:
        """Lossless frames in order, a batch at a time; live frames as the reader has room for them (at least
        one, so that a flush always makes progress): the newest of each stream, longest-unserved stream first."""
        if self.outlet is None or any(it.meta.lossless for it in self.queue):
            return super().take_batch()
        newest = {it.stream: it for it in self.queue}
        for it in self.queue:
            if newest[it.stream] is not it:
                self.drop_stale(it)
        ready = sorted(newest.values(), key=lambda it: self.sent_at.get(it.stream, -1))
        batch = ready[: max(1, min(self.batch_size, self.outlet.live_room()))]
        self.queue.clear()
        self.queue.extend(it for it in ready if all(it is not b for b in batch))
        self.rounds += 1
        for it in batch:
            self.sent_at[it.stream] = self.rounds
        return batch

    def process(self, items: list[Item]) -> None:
        out = []
        pc = self.cfg.preprocess
        assert self.outlet is not None
        for it in items:
            img = it.data
            if not isinstance(img, np.ndarray) or img.ndim not in (2, 3) or img.dtype != np.uint8 or (
                img.ndim == 3 and img.shape[2] not in (1, 3)
            ):
                self.drop_books.drop(it, "bad_image")
                continue
            if img.ndim == 3 and img.shape[2] == 1:
                img = img[:, :, 0]
            rgb, scale = detector_view(img, pc.detector_width, pc.detector_height, pc.max_upscale)
            it.meta.scale = scale
            it.meta.src_shape = (int(img.shape[0]), int(img.shape[1]))
            if self.inlet is not None:
                self.inlet.fate(it, used=True)  # before attach replaces the payload it came in
            self.outlet.attach(it, rgb)
            out.append(it)
        self.outlet.send_items(MSG_BATCH, out)
