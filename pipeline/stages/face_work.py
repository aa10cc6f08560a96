"""The face work of the inference stage, separate from its messaging:
detect -> landmarks -> aligned chip + quality -> (track -> embed when scheduled -> recognise).

Input per frame: (stream, seq, capture wall ns, RGB detector-sized frame, scale source->detector).
Output per frame: (faces as :class:`~facestream.pipeline.records.FaceRecord` in source pixels, track events
as :class:`~facestream.pipeline.records.EventRecord`).

Recognition modes (``inference.recognizer``):
- ``gallery``: per-track open-set recognition (pipeline/recognition/): embeddings only when the scheduler
  asks, batched across every face of every stream in the batch in one engine call; items of a ``stills``
  source (an image folder) are photos: every face embedded and named on its own, no tracking (still_work.py);
- ``classifier``: a trained closed-set classifier on the recipe's 128x128 grey crop, per face;
- ``none``: detection (and landmarks/quality) only.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .. import metrics as m
from ..config import PipelineConfig
from ..records import EventRecord, FaceRecord

FrameIn = tuple[str, int, int, np.ndarray, float]


class FaceWork:
    def __init__(self, cfg: PipelineConfig, log: logging.Logger):
        from facestream.engines.faces.analyzer import FaceAnalyzer
        from facestream.engines.store import ModelStore

        self.cfg = cfg
        self.log = log
        ic = cfg.inference
        view = cfg.inference_view()
        self.store = ModelStore(ic.models_dir or None)
        backend_opts = cfg.engines.backend_options(ic.backend)
        self.analyzer = FaceAnalyzer(ic.detector, store=self.store, backend=ic.backend, backend_opts=backend_opts)
        self.regions = None
        spec = ic.detector
        if getattr(spec, "regions", False):  # hog and mtcnn
            from facestream.engines.faces.region_detector import RegionDetector

            self.regions = RegionDetector(self.analyzer.detector, threads=spec.threads,
                                          luma=getattr(spec, "luma", False),
                                          track_margin=getattr(spec, "track_margin", None))
            from facestream.engines.faces.detect_ahead import DetectAhead

            self.ahead = DetectAhead(self.regions)
        self.recognizer = None
        self.classifier = None
        if ic.embed and ic.recognizer == "gallery":
            from ..recognition.gallery import Gallery
            from ..recognition.stream_recognizer import StreamRecognizer
            from ..recognition.temporal import make_aggregator

            gallery = Gallery(ic.gallery or None)
            rcfg = cfg.recognition.runtime(crops_for_unknown=view.crops_for_unknown)
            crop_dir = Path(view.crop_dir) if view.crop_dir else None
            self.recognizer = StreamRecognizer(gallery, make_aggregator(ic.aggregator, store=self.store,
                                                                        backend=ic.backend),
                                               rcfg, crop_dir=crop_dir, ship_crops=True)
            self.embedder = self.analyzer.embedder  # load (and import dlib's models) now, not on the first face
            self.gallery = gallery
            log.info("inference: recognising against gallery %s (%d people, aggregator %s)", gallery.path,
                     len(gallery.names()), ic.aggregator)
        elif ic.recognizer == "classifier":
            from facestream.engines.classifier import FaceClassifier

            self.classifier = FaceClassifier(ic.classifier_model, store=self.store, backend=ic.backend)
        log.info("inference: detector %s, recognizer %s", ic.detector.type, ic.recognizer if ic.embed else "none")

    def detect_ahead(self, frames: list[FrameIn]) -> bool:
        """Start detecting the batch that comes next (video frames only) while this one is finished; False
        when it was not started (no regions detector, a batch already ahead, or these frames already done)."""
        if self.regions is None or not frames:
            return False
        return self.ahead.start([(f[0], f[1]) for f in frames],
                                [(f[0], np.ascontiguousarray(f[3])) for f in frames])

    def _faces(self, frames: list[FrameIn], stills: list[bool], then=None) -> list[list]:
        """Per frame: detections with landmarks, chip and quality (no embedding yet), smaller than min_face
        dropped. Video frames go to the region planner together (their crops share the detector's threads);
        a still is searched whole (the planner follows faces from frame to frame). ``then`` is called once
        the detections are in (the stage starts the next batch's detection there: detect_ahead.py)."""
        min_face = self.cfg.inference.detector.min_face
        rgbs = [np.ascontiguousarray(f[3]) for f in frames]
        dets: list[list] = [[] for _ in frames]
        planned = [k for k, still in enumerate(stills) if self.regions is not None and not still]
        if planned:
            assert self.regions is not None
            found = self.ahead.detect([frames[k][:2] for k in planned], [(frames[k][0], rgbs[k]) for k in planned])
            for k, boxes in zip(planned, found, strict=True):
                dets[k] = boxes
        for k in set(range(len(frames))) - set(planned):
            dets[k] = self.analyzer.detector.detect(rgbs[k])
        if then is not None:
            then()
        return [self.analyzer.describe(rgb, [d for d in found if min(d.box[2] - d.box[0], d.box[3] - d.box[1])
                                             >= min_face]) for rgb, found in zip(rgbs, dets, strict=True)]

    def run(self, frames: list[FrameIn], stills: list[bool] | None = None, then=None
            ) -> list[tuple[list[FaceRecord], list[EventRecord]]]:
        """Per frame: its faces (source pixels, with track and identity when recognising) and track events.
        Frames flagged in ``stills`` are photos: each face decided on its own (still_work.py). ``then``: called
        once the frames' detections are in, before the rest of the work."""
        stills = stills or [False] * len(frames)
        per_frame = self._faces(frames, stills, then)
        records = [[FaceRecord.detected(f.box, f.score, f.quality.score, f.landmarks, scale) for f in faces]
                   for (_, _, _, _, scale), faces in zip(frames, per_frame, strict=True)]
        events: list[list[EventRecord]] = [[] for _ in frames]
        if self.recognizer is not None:
            from ..recognition.batch import recognise_frames
            from .still_work import identify_stills

            video = [k for k, still in enumerate(stills) if not still]
            results = recognise_frames(self.recognizer, [(*frames[k][:3], per_frame[k]) for k in video],
                                       self.embedder.embed)
            for k, res in zip(video, results, strict=True):
                for tr in res.tracks:
                    records[k][tr.face_index] = records[k][tr.face_index].with_track(
                        tr.track_id, tr.embedded, tr.identity, tr.score)
                events[k] = [self._event(e) for e in res.events]
            photos = [k for k, still in enumerate(stills) if still]
            if photos:
                found = [records[k] for k in photos]
                named = identify_stills(self.recognizer, self.embedder.embed, [frames[k][:3] for k in photos],
                                        [per_frame[k] for k in photos], found)
                for k, recs, evs in zip(photos, found, named, strict=True):
                    records[k], events[k] = recs, [self._event(e) for e in evs]
        elif self.classifier is not None:
            from facestream.engines.faces.align import grey_crop_128

            for k, faces in enumerate(per_frame):
                if not faces:
                    continue
                crops = np.stack([grey_crop_128(frames[k][3], f.landmarks, order="rgb") for f in faces])
                records[k] = [r.with_label(label, conf)
                              for r, (label, conf) in zip(records[k], self.classifier.predict(crops), strict=True)]
        return list(zip(records, events, strict=True))

    def _event(self, e) -> EventRecord:
        rec = EventRecord.from_event(e)
        if rec.kind in ("identified", "identity_changed"):
            m.FACES_IDENTIFIED.labels(rec.stream_id, "known" if rec.name is not None else "unknown").inc()
        return rec

    def end_stream(self, stream: str, seq: int, ts_ns: int) -> list[EventRecord]:
        if self.regions is not None:
            self.ahead.settle(stream)
            self.regions.end_stream(stream)
        if self.recognizer is None:
            return []
        return [self._event(e) for e in self.recognizer.end_stream(stream, seq, ts_ns, self.embedder.embed)]

    def close(self) -> None:
        if self.regions is not None:
            self.ahead.close()
            if self.ahead.used or self.ahead.discarded:  # only where inference.detect_ahead was on
                self.log.info("inference: frames detected ahead: %d used, %d discarded", self.ahead.used,
                              self.ahead.discarded)
            self.regions.close()
        if self.recognizer is not None:
            self.gallery.close()

