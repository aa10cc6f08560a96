"""Rectangles for region detection: grow, clip, merge, and run a detector on crops of one frame.

Boxes are integer ``(x1, y1, x2, y2)`` in frame pixels, x2/y2 exclusive.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Executor

import cv2
import numpy as np

from .detector import Detection

Box = tuple[int, int, int, int]
ALIGN = 4  # crop origins on multiples of this: HOG cells are 8 px on the 2x-upsampled image


def area(b: Box) -> int:
    return max(0, b[2] - b[0]) * max(0, b[3] - b[1])


def clip(b: Box, width: int, height: int) -> Box:
    return max(0, b[0]), max(0, b[1]), min(width, b[2]), min(height, b[3])


def grow(box: tuple[float, float, float, float], frac: float, pad: float, width: int, height: int) -> Box:
    """The box grown by ``frac`` of its larger side plus ``pad`` pixels on every side, clipped to the frame."""
    x1, y1, x2, y2 = box
    d = frac * max(x2 - x1, y2 - y1) + pad
    return clip((int(np.floor(x1 - d)), int(np.floor(y1 - d)), int(np.ceil(x2 + d)), int(np.ceil(y2 + d))),
                width, height)


def _union(a: Box, b: Box) -> Box:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def _intersect(a: Box, b: Box) -> int:
    return area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))


def merge(boxes: Iterable[Box], slack: float = 1.0) -> list[Box]:
    """Overlapping boxes joined into their enclosing box where that box costs no more than ``slack`` x the
    pixels the two cover; repeated until nothing joins. Fewer, larger crops scan each pixel once."""
    out = [b for b in boxes if area(b) > 0]
    joined = True
    while joined:
        joined = False
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                a, b = out[i], out[j]
                inter = _intersect(a, b)
                if inter == 0:
                    continue
                u = _union(a, b)
                if area(u) <= slack * (area(a) + area(b) - inter):
                    out[i] = u
                    del out[j]
                    joined = True
                    break
            if joined:
                break
    return out


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / u if u > 0 else 0.0


def dedupe(dets: list[Detection], threshold: float = 0.5) -> list[Detection]:
    """One detection per face where crops overlapped: the best score kept, boxes with IoU > threshold dropped."""
    kept: list[Detection] = []
    for d in sorted(dets, key=lambda d: -d.score):
        if all(iou(d.box, k.box) <= threshold for k in kept):
            kept.append(d)
    return kept


def detect_in_regions(
    detect: Callable[[np.ndarray], list[Detection]],
    frame: np.ndarray,
    regions: list[Box],
    executor: Executor | None = None,
    scales: list[float] | None = None,
) -> list[Detection]:
    """Detections of ``detect`` run on each crop (resized by its scale, 1 = as is), in frame pixels, clipped
    to the frame, deduplicated. With an executor the crops run in parallel (dlib's HOG releases the GIL)."""
    return detect_in_frames([(detect, frame, regions, scales)], executor)[0]


# the detector for a frame's crops, the frame, its regions, their scales (None: all 1)
Job = tuple[Callable[[np.ndarray], list[Detection]], np.ndarray, list[Box], "list[float] | None"]


def detect_in_frames(jobs: list[Job], executor: Executor | None = None) -> list[list[Detection]]:
    """:func:`detect_in_regions` for several frames at once: the crops of every frame go to the executor
    together, largest first, so both cores stay busy while one frame's last crop runs (a frame alone
    leaves a core idle behind its largest crop). One deduplicated list per frame, in the jobs' order."""

    def one(job: int, k: int) -> list[Detection]:
        detect, frame, regions, scales = jobs[job]
        h, w = frame.shape[:2]
        x1, y1, x2, y2 = regions[k]
        x1, y1 = x1 - x1 % ALIGN, y1 - y1 % ALIGN  # the same HOG cell grid as on the whole frame
        crop = frame[y1:y2, x1:x2]
        s = 1.0 if scales is None else scales[k]
        if s != 1.0:
            crop = cv2.resize(crop, (max(1, round((x2 - x1) * s)), max(1, round((y2 - y1) * s))),
                              interpolation=cv2.INTER_AREA)
        found = detect(np.ascontiguousarray(crop))
        return [Detection((max(0.0, d.box[0] / s + x1), max(0.0, d.box[1] / s + y1),
                           min(float(w), d.box[2] / s + x1), min(float(h), d.box[3] / s + y1)), d.score,
                          None if d.landmarks is None else d.landmarks / s + np.float32((x1, y1)))
                for d in found]

    def cost(jk: tuple[int, int]) -> float:
        _, _, regions, scales = jobs[jk[0]]
        return area(regions[jk[1]]) * (1.0 if scales is None else scales[jk[1]]) ** 2

    order = sorted(((j, k) for j, (_, _, regions, _) in enumerate(jobs) for k, r in enumerate(regions)
                    if r[2] - r[0] >= 8 and r[3] - r[1] >= 8), key=lambda jk: -cost(jk))
    if executor is not None and len(order) > 1:
        parts = list(executor.map(lambda jk: one(*jk), order))
    else:
        parts = [one(*jk) for jk in order]
    per_frame: list[list[Detection]] = [[] for _ in jobs]
    for (j, _), found in zip(order, parts, strict=True):
        per_frame[j].extend(found)
    return [dedupe(found) for found in per_frame]
