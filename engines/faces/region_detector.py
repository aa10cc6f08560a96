"""The fine detector run only where each stream's planner says a face can be (engines/faces/planner.py).

A small thread pool (dlib's HOG and ONNX Runtime release the GIL, so crops of a frame run on both cores),
one planner per stream. HOG gets one detector per thread (a dlib detector object is not safe to share between
threads: it crashed with a double free); a detector with ``thread_safe`` (MTCNN on ONNX Runtime) is shared.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import cv2
import numpy as np

from .detector import Detection, HogDetector
from .low_light import LowLightDetector, for_detector
from .planner import DetectionPlanner, PlannerConfig
from .regions import dedupe, detect_in_frames


class RegionDetector:
    """``detector``: a HogDetector or MtcnnDetector, or one wrapped in LowLightDetector (a dark frame is then
    enhanced once, whole, before the planner and the crops see it, and HOG's lower dark-frame threshold applies
    to every crop). ``luma``: a detector that ``takes_grey`` (HOG) searches the frame's grey levels.
    ``track_margin`` overrides the config's (PlannerConfig.track_margin, in the detector's score units)."""

    def __init__(self, detector, cfg: PlannerConfig | None = None, threads: int = 2, luma: bool = False,
                 track_margin: float | None = None):
        self.low_light = detector if isinstance(detector, LowLightDetector) else None
        detector = detector.inner if isinstance(detector, LowLightDetector) else detector
        self.detector = detector
        # HOG on the frame's grey levels (one conversion per frame, crops cut from it): see HogSpec.luma
        self.luma = bool(luma) and getattr(detector, "takes_grey", False)
        self._local = threading.local()
        # dlib's HOG window is 80 px, halved by each upsampling: a followed face is shrunk no further than
        # that window allows at this detector's upsampling (MTCNN: its min_face, ``smallest_face``).
        window = getattr(detector, "smallest_face", None) or 80.0 / 2 ** detector.upsample
        self.cfg = cfg or PlannerConfig(track_window=float(window))
        if track_margin is not None:
            self.cfg = replace(self.cfg, track_margin=float(track_margin))
        # in the detector's score units; in a dark frame it is taken off the dark frame's lowered threshold
        self.track_margin = self.cfg.track_margin
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="detect") if threads > 1 else None
        self._planners: dict[str, DetectionPlanner] = {}
        self.pixels: dict[str, int] = {}  # crop pixels searched, per reason (tracks / scan / full / motion)
        self.frames = 0

    def detect(self, stream: str, frame: np.ndarray) -> list[Detection]:
        """Faces in this frame of ``stream`` (frames of one stream in order), best score first."""
        return self.detect_frames([(stream, frame)])[0]

    def detect_frames(self, frames: list[tuple[str, np.ndarray]]) -> list[list[Detection]]:
        """Faces in each of these frames (``(stream, frame)``, each stream's frames in order), one list per
        frame. The crops of frames of different streams run on the pool together; a stream's next frame waits
        for its planner to learn from the one before."""
        out: list[list[Detection]] = [[] for _ in frames]
        pending = list(range(len(frames)))
        while pending:
            wave: list[int] = []
            later: list[int] = []
            for i in pending:
                (later if any(frames[j][0] == frames[i][0] for j in wave) else wave).append(i)
            jobs, plans = [], []
            for i in wave:
                stream, frame = frames[i]
                planner = self._planners.get(stream)
                if planner is None:
                    planner = self._planners[stream] = DetectionPlanner(self.cfg)
                thr = None  # the detector's own threshold, or the lowered one of a dark frame
                if self.low_light is not None:
                    frame, dark = for_detector(frame, self.low_light.dark_luma)
                    if dark:
                        self.low_light.dark_frames += 1
                        thr = self.low_light.dark_threshold()
                if self.luma:
                    frame = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
                plan = planner.plan(frame)
                # the threshold over which a face counts (None: no track margin, every box counts)
                base = (self.detector.score_threshold if thr is None else thr) if self.track_margin > 0 else None
                nf = plan.followed
                if nf and base is not None:  # followed faces' regions at the track margin, the rest as usual
                    jobs += [(self._at(thr), frame, plan.regions[nf:], plan.scales[nf:]),
                             (self._at(base - self.track_margin), frame, plan.regions[:nf], plan.scales[:nf])]
                else:
                    jobs.append((self._at(thr), frame, plan.regions, plan.scales))
                plans.append((planner, plan, base, len(jobs)))
            results = detect_in_frames(jobs, self._pool)
            start = 0
            for i, (planner, plan, base, end) in zip(wave, plans, strict=True):
                found = dedupe([d for r in results[start:end] for d in r])
                found = found if base is None else planner.accept(found, base)
                start = end
                planner.update(found, base)
                out[i] = found
                self.frames += 1
                for k, v in plan.pixels.items():
                    self.pixels[k] = self.pixels.get(k, 0) + v
            pending = later
        return out

    def _at(self, score_threshold: float | None):
        """The detector for crops at this threshold (None: the detector's own)."""
        return lambda crop: self._detect(crop, score_threshold)

    def _detect(self, crop: np.ndarray, score_threshold: float | None = None) -> list[Detection]:
        if getattr(self.detector, "thread_safe", False):
            return self.detector.detect(crop, score_threshold)
        det = getattr(self._local, "detector", None)
        if det is None:
            det = self._local.detector = HogDetector(self.detector.upsample, self.detector.score_threshold)
        return det.detect(crop, score_threshold)

    def end_stream(self, stream: str) -> None:
        self._planners.pop(stream, None)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
