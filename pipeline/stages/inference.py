"""Inference stage: face detection (and, when enabled, alignment, embedding and recognition) per batch.

Detection runs on the detector-sized RGB frame from preprocess; boxes are mapped back to source pixels
(``meta.scale``). The frame is forwarded to the sink only when the sink writes video.
"""

from __future__ import annotations

import time

import numpy as np

from .. import metrics as m
from ..config import PipelineConfig
from ..wire import MSG_RESULT, Item
from .base import Stage, is_lossless
from .face_work import FaceWork


class InferenceStage(Stage):
    name = "inference"

    def __init__(self, cfg: PipelineConfig):
        super().__init__(cfg)
        self.batch_size = max(1, cfg.inference_view().batch_size)
        self.batch_timeout_s = 0.0
        self.work: FaceWork | None = None

    def setup(self) -> None:
        self.work = FaceWork(self.cfg, self.log)

    def process(self, items: list[Item]) -> None:
        assert self.work is not None and self.encoder is not None
        ok: list[Item] = []
        for it in items:
            if isinstance(it.data, np.ndarray) and it.data.ndim == 3 and it.data.shape[2] == 3:
                ok.append(it)
            else:
                self.drop(it, "bad_image")
        if not ok:
            return
        if self.cfg.inference.throttle_ms:
            time.sleep(self.cfg.inference.throttle_ms / 1000.0)
        results = self.work.run([(it.stream, it.seq, it.wall_ns, it.data, float(it.meta.get("scale", 1.0)))
                                 for it in ok])
        for it, (faces, events) in zip(ok, results, strict=True):
            it.meta["faces"] = faces
            if events:
                it.meta["events"] = events
            m.FACES_DETECTED.labels(it.stream).inc(len(faces))
            self.encoder.attach(it, it.data if self.cfg.inference_view().forward_frames else None, is_lossless(it), self.stop_event.is_set)
        self.send_items(MSG_RESULT, ok)

    def stream_ended(self, item: Item) -> None:
        """The stream's open tracks end with it: their 'ended' events travel on the end of stream."""
        if self.work is not None:
            events = self.work.end_stream(item.stream, item.seq, time.time_ns())
            if events:
                item.meta["events"] = events

    def teardown(self) -> None:
        if self.work is not None:
            self.work.close()
