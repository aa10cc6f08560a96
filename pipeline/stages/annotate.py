"""Annotated MP4 output: boxes and names drawn on the detector-sized frame; unknown faces blurred on request."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from .. import metrics as m
from ..records import FaceRecord


def blur_box(img: np.ndarray, box: tuple[int, int, int, int]) -> None:
    x1, y1, x2, y2 = box
    roi = img[y1:y2, x1:x2]
    if roi.size:
        k = max(3, (min(roi.shape[:2]) // 3) | 1)
        img[y1:y2, x1:x2] = cv2.GaussianBlur(roi, (k, k), 0)


def annotate(bgr: np.ndarray, faces: Sequence[FaceRecord], scale: float, blur_unknown: bool,
             copy: bool = True) -> np.ndarray:
    """Draw (or blur) faces; ``faces`` boxes are in source pixels, the frame is ``scale`` x source.
    ``copy=False`` draws into ``bgr`` itself (for a frame the caller made for this)."""
    out = bgr.copy() if copy else bgr
    h, w = out.shape[:2]
    for f in faces:
        x1, y1, x2, y2 = f.box_in(scale)
        x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
        if blur_unknown and not f.known:
            blur_box(out, (x1, y1, x2, y2))
            continue
        colour = (0, 200, 0) if f.known else (0, 165, 255)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, 2)
        label = f.identity if f.identity else f"{f.score:.2f}"
        if f.track is not None:
            label = f"#{f.track} {label}"
        cv2.putText(out, label, (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
    return out


class VideoWriters:
    """One MP4 per stream in out_dir; size fixed by the first frame (later frames are resized to it)."""

    def __init__(self, out_dir: Path, fps: float, blur_unknown: bool, log: logging.Logger):
        self.out_dir, self.fps, self.blur_unknown, self.log = out_dir, fps, blur_unknown, log
        self.writers: dict[str, tuple[cv2.VideoWriter, tuple[int, int]]] = {}

    def write(self, stream: str, rgb: np.ndarray, faces: Sequence[FaceRecord], scale: float) -> None:
        bgr = annotate(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR), faces, scale, self.blur_unknown,
                       copy=False)  # cvtColor made a new frame already
        entry = self.writers.get(stream)
        if entry is None:
            path = self.out_dir / f"{stream}.mp4"
            size = (bgr.shape[1], bgr.shape[0])
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, size)
            if not writer.isOpened():
                m.SINK_WRITE_ERRORS.labels("video").inc()
                self.log.error("sink: cannot open video writer %s", path)
                return
            entry = self.writers[stream] = (writer, size)
        writer, size = entry
        if (bgr.shape[1], bgr.shape[0]) != size:
            bgr = cv2.resize(bgr, size)
        writer.write(bgr)

    def close(self, stream: str) -> None:
        entry = self.writers.pop(stream, None)
        if entry:
            entry[0].release()

    def close_all(self) -> None:
        for s in list(self.writers):
            self.close(s)
