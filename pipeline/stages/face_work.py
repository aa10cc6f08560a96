"""The face work of the inference stage, separate from its messaging: detect -> (align -> embed -> recognise).

Input per frame: (stream, seq, capture wall ns, RGB detector-sized frame, scale source->detector).
Output per frame: (faces as JSON-ready dicts in source pixels, events).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..config import PipelineConfig

FrameIn = tuple[str, int, int, np.ndarray, float]


class FaceWork:
    def __init__(self, cfg: PipelineConfig, log: logging.Logger):
        self.cfg = cfg
        self.log = log
        ic = cfg.inference
        import dlib

        self._hog = dlib.get_frontal_face_detector() if ic.detector == "hog" else None
        if ic.detector == "cnn":
            from engines.faces.detector import FaceDetector

            self._cnn = FaceDetector(store=ic.models_dir or None, backend=ic.backend, min_face=ic.min_face,
                                     score_threshold=ic.score_threshold)
        self.log.info("inference: detector %s", ic.detector)

    def detect(self, rgb: np.ndarray) -> list[tuple[tuple[float, float, float, float], float]]:
        ic = self.cfg.inference
        if self._hog is not None:
            rects, scores, _ = self._hog.run(np.ascontiguousarray(rgb), ic.hog_upsample, ic.score_threshold)
            out = []
            for r, s in zip(rects, scores, strict=True):
                box = (float(r.left()), float(r.top()), float(r.right() + 1), float(r.bottom() + 1))
                if min(box[2] - box[0], box[3] - box[1]) >= ic.min_face:
                    out.append((box, float(s)))
            return out
        return [(d.box, d.score) for d in self._cnn.detect(rgb)]

    def run(self, frames: list[FrameIn]) -> list[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
        results = []
        for _stream, _seq, _ts, rgb, scale in frames:
            faces = []
            for box, score in self.detect(rgb):
                inv = 1.0 / scale if scale > 0 else 1.0
                faces.append({"box": [round(v * inv, 1) for v in box], "score": round(score, 4)})
            results.append((faces, []))
        return results

    def close(self) -> None:
        pass
