"""Inference stage: face detection (and, when enabled, alignment, embedding and recognition) per batch.

Detection runs on the detector-sized RGB frame from preprocess; boxes are mapped back to source pixels
(``meta.scale``). The frame's pixels go on to the sink when the sink writes video (every frame) or for the
live view: at most ``web.preview_fps`` frames per second per stream, plus every frame that carries an
identification (the sink keeps that frame with the event).
"""

from __future__ import annotations

import itertools
import time

import numpy as np

from .. import metrics as m
from ..config import PipelineConfig
from ..preview import EVENT_FRAME_KINDS
from ..wire import MSG_BATCH, MSG_RESULT, Item
from .base import Stage
from .books import DropBooks
from .face_work import FaceWork
from .inlet import Inlet
from .outlet import Outlet


def usable(it: Item) -> bool:
    """Whether an item's pixels are an RGB uint8 frame (anything else is dropped as ``bad_image``)."""
    d = it.data
    return isinstance(d, np.ndarray) and d.ndim == 3 and d.shape[2] == 3 and d.dtype == np.uint8


def frame_in(it: Item) -> tuple:
    """An item as FaceWork takes a frame: (stream, seq, capture wall ns, pixels, scale source->detector)."""
    return it.stream, it.seq, it.wall_ns, it.data, 1.0 if it.meta.scale is None else it.meta.scale


class InferenceStage(Stage):
    name = "inference"
    accepts = (MSG_BATCH,)

    def __init__(self, cfg: PipelineConfig, outlet: Outlet | None = None, *, inlet: Inlet | None = None,
                 books: DropBooks | None = None):
        super().__init__(cfg, outlet, inlet=inlet, books=books)
        view = cfg.inference_view()
        self.batch_size = max(1, view.batch_size)
        self.forward_frames = view.forward_frames
        self.preview_period = 1.0 / view.preview_fps if view.preview_fps > 0 else None
        self.preview_last: dict[str, float] = {}
        self.batch_timeout_s = 0.0
        self.work: FaceWork | None = None
        self.gallery_retention = None

    def setup(self) -> None:
        self.work = FaceWork(self.cfg, self.log)
        gallery = getattr(self.work, "gallery", None)
        days = self.cfg.inference_view().retention_days
        if gallery is not None and days > 0:
            from ..recognition.gallery_retention import GalleryRetention

            self.gallery_retention = GalleryRetention(gallery, days)

    def housekeeping(self) -> None:
        super().housekeeping()
        if self.gallery_retention is not None:
            self.gallery_retention.maybe_prune()  # sightings and unknown clusters of strangers

    def process(self, items: list[Item]) -> None:
        assert self.work is not None and self.outlet is not None
        ok: list[Item] = []
        for it in items:
            if usable(it):
                ok.append(it)
            else:
                self.drop_books.drop(it, "bad_image")
        if not ok:
            return
        if self.cfg.inference.throttle_ms:
            time.sleep(self.cfg.inference.throttle_ms / 1000.0)
        results = self.work.run([frame_in(it) for it in ok], stills=[bool(it.meta.stills) for it in ok],
                                then=self.detect_next)
        for it, (faces, events) in zip(ok, results, strict=True):
            it.meta.faces, it.meta.events = faces, events
            m.FACES_DETECTED.labels(it.stream).inc(len(faces))
            self.outlet.attach(it, it.data if self.wants_pixels(it.stream, events) else None)
        self.outlet.send_items(MSG_RESULT, ok)

    def detect_next(self) -> None:
        """Start detecting the next queued video frames while this batch is finished
        (engines/faces/detect_ahead.py; ``inference.detect_ahead``); not while downstream holds the stage back.
        What preprocess sent meanwhile is taken first, so the next frame is there to start on; that costs a
        live frame about one frame's processing of latency, which buys throughput only where another stream's
        frame can use the idle cores: a stage with one stream is left as it is (one camera: the same results/s,
        p50 148 vs 227 ms without pulling early)."""
        assert self.work is not None
        if not self.cfg.inference.detect_ahead:
            return
        if len(self.streams) < 2:
            return
        self.receive_pending(limit=8)  # what preprocess sent while this batch was detected
        nxt = list(itertools.islice(self.queue, self.batch_size))
        if nxt and all(usable(it) and not it.meta.stills for it in nxt) and not self.hold_live():
            self.work.detect_ahead([frame_in(it) for it in nxt])

    def wants_pixels(self, stream: str, events: list) -> bool:
        """Whether the sink gets this frame's pixels: for its video, or for the live view (rate-limited per
        stream on this stage's clock) and the frames of identifications."""
        if self.forward_frames:
            return True
        if self.preview_period is None:
            return False
        if any(e.kind in EVENT_FRAME_KINDS for e in events):
            return True
        now = time.monotonic()
        if now - self.preview_last.get(stream, -1e9) < self.preview_period:
            return False
        self.preview_last[stream] = now
        return True

    def stream_ended(self, item: Item) -> None:
        """The stream's open tracks end with it: their 'ended' events travel on the end of stream."""
        if self.work is not None:
            events = self.work.end_stream(item.stream, item.seq, time.time_ns())
            if events:
                item.meta.events = events

    def teardown(self) -> None:
        if self.work is not None:
            self.work.close()
