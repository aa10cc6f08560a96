"""The face work of the inference stage, separate from its messaging:
detect -> landmarks -> aligned chip + quality -> (track -> embed when scheduled -> recognise).

Input per frame: (stream, seq, capture wall ns, RGB detector-sized frame, scale source->detector).
Output per frame: (faces as JSON-ready dicts in source pixels, track events as dicts).

Recognition modes (``inference.recognizer``):
- ``gallery``: per-track open-set recognition (pipeline.recognition): embeddings only when the scheduler asks,
  batched across every face of every stream in the batch in one engine call;
- ``classifier``: a trained closed-set classifier on the recipe's 128x128 grey crop, per face;
- ``none``: detection (and landmarks/quality) only.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from .. import metrics as m
from ..config import PipelineConfig

FrameIn = tuple[str, int, int, np.ndarray, float]


class FaceWork:
    def __init__(self, cfg: PipelineConfig, log: logging.Logger):
        from facestream.engines.faces.analyzer import FaceAnalyzer
        from facestream.engines.store import ModelStore

        self.cfg = cfg
        self.log = log
        ic = cfg.inference
        self.store = ModelStore(ic.models_dir or None)
        if ic.detector == "hog":
            self.analyzer = FaceAnalyzer("hog", store=self.store, upsample=ic.hog_upsample,
                                         score_threshold=ic.score_threshold)
        else:
            self.analyzer = FaceAnalyzer("cnn", store=self.store, backend=ic.backend, min_face=ic.min_face,
                                         score_threshold=ic.score_threshold)
        self.regions = None
        if ic.detector == "hog" and ic.regions:
            from facestream.engines.faces.region_detector import RegionDetector

            self.regions = RegionDetector(self.analyzer.detector, threads=ic.detect_threads)
        self.recognizer = None
        self.classifier = None
        if ic.embed and ic.recognizer == "gallery":
            from ..recognition.gallery import Gallery
            from ..recognition.stream_recognizer import RecognizerConfig, StreamRecognizer
            from ..recognition.temporal import make_aggregator

            gallery = Gallery(ic.gallery or None)
            rcfg = RecognizerConfig()
            if ic.match_threshold:
                rcfg.threshold = ic.match_threshold
            rcfg.crops_for_unknown = not cfg.privacy.blur_unknown
            crop_dir = Path(cfg.sink.out_dir) / "crops" if cfg.sink.crops else None
            self.recognizer = StreamRecognizer(gallery, make_aggregator(ic.aggregator, store=self.store,
                                                                        backend=ic.backend),
                                               rcfg, crop_dir=crop_dir)
            self.embedder = self.analyzer.embedder  # load (and import dlib's models) now, not on the first face
            self.gallery = gallery
            log.info("inference: recognising against gallery %s (%d people, aggregator %s)", gallery.path,
                     len(gallery.names()), ic.aggregator)
        elif ic.recognizer == "classifier":
            from facestream.engines.classifier import FaceClassifier

            self.classifier = FaceClassifier(ic.classifier_model, store=self.store, backend=ic.backend)
        log.info("inference: detector %s, recognizer %s", ic.detector, ic.recognizer if ic.embed else "none")

    def _faces(self, stream: str, rgb: np.ndarray) -> list:
        """Detections with landmarks, chip and quality (no embedding yet), smaller than min_face dropped."""
        min_face = self.cfg.inference.min_face
        rgb = np.ascontiguousarray(rgb)
        dets = self.regions.detect(stream, rgb) if self.regions else self.analyzer.detector.detect(rgb)
        return self.analyzer.describe(rgb, [d for d in dets if min(d.box[2] - d.box[0], d.box[3] - d.box[1])
                                            >= min_face])

    def run(self, frames: list[FrameIn]) -> list[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
        per_frame = [self._faces(stream, rgb) for stream, _, _, rgb, _ in frames]
        dicts = []
        for (_, _, _, _, scale), faces in zip(frames, per_frame, strict=True):
            inv = 1.0 / scale if scale > 0 else 1.0
            dicts.append([{
                "box": [round(float(v) * inv, 1) for v in f.box],
                "score": round(float(f.score), 4),
                "quality": round(float(f.quality.score), 3),
                "landmarks": [[round(float(x) * inv, 1), round(float(y) * inv, 1)] for x, y in f.landmarks],
            } for f in faces])
        events: list[list[dict[str, Any]]] = [[] for _ in frames]
        if self.recognizer is not None:
            from ..recognition.stream_recognizer import recognise_frames

            results = recognise_frames(self.recognizer, [(s, q, t, faces) for (s, q, t, _, _), faces
                                                         in zip(frames, per_frame, strict=True)],
                                       self.embedder.embed)
            for k, res in enumerate(results):
                for tr in res.tracks:
                    d = dicts[k][tr.face_index]
                    d["track"] = tr.track_id
                    if tr.embedded:
                        d["embedded"] = True
                    if tr.identity is not None:
                        d["identity"] = tr.identity
                        d["similarity"] = _finite(tr.score)
                events[k] = [self._event(e) for e in res.events]
        elif self.classifier is not None:
            from facestream.engines.faces.align import grey_crop_128

            for k, faces in enumerate(per_frame):
                if not faces:
                    continue
                crops = np.stack([grey_crop_128(frames[k][3], f.landmarks, order="rgb") for f in faces])
                for d, (label, conf) in zip(dicts[k], self.classifier.predict(crops), strict=True):
                    d["identity"], d["confidence"] = label, round(float(conf), 4)
        return list(zip(dicts, events, strict=True))

    def _event(self, e) -> dict[str, Any]:
        d = {k: (_finite(v) if isinstance(v, float) else v) for k, v in e.to_dict().items()}
        if d.get("kind") in ("identified", "identity_changed"):
            known = d.get("name") is not None
            m.FACES_IDENTIFIED.labels(d.get("stream_id", ""), "known" if known else "unknown").inc()
        return d

    def end_stream(self, stream: str, seq: int, ts_ns: int) -> list[dict[str, Any]]:
        if self.regions is not None:
            self.regions.end_stream(stream)
        if self.recognizer is None:
            return []
        return [self._event(e) for e in self.recognizer.end_stream(stream, seq, ts_ns)]

    def close(self) -> None:
        if self.regions is not None:
            self.regions.close()
        if self.recognizer is not None:
            self.gallery.close()


def _finite(v: float | None) -> float | None:
    """JSON has no infinities: a score that does not exist (empty gallery) is null."""
    if v is None or not np.isfinite(v):
        return None
    return round(float(v), 4)
