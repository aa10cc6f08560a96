"""Face quality per crop: size, sharpness and frontalness, to pick the best shot and refuse bad enrolment photos.

- size_px: the shorter side of the face box.
- blur: variance of the Laplacian of the grey 150x150 aligned chip (the chip fixes the scale, so the value
  is comparable across face sizes; a small face enlarged into the chip reads as blurred, which is right).
  Sharp LFW faces: ~20-650 (median ~50); Gaussian blur sigma 1.5 px: 5-18; sigma 3: 3-7.
- frontalness: 1 when the nose base projects onto the middle of the eye line, 0 at a profile (yaw only;
  in-plane roll is undone by alignment).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from .align import face_chip

ENROL_MIN_SIZE_PX = 60.0
ENROL_MIN_BLUR = 15.0
ENROL_MIN_FRONTALNESS = 0.4
GOOD_SIZE_PX = 100.0
GOOD_BLUR = 100.0


@dataclass
class FaceQuality:
    score: float  # 0..1, higher is better
    size_px: float
    blur: float  # variance of Laplacian on the aligned chip; higher is sharper
    frontalness: float  # 0..1
    reasons: list[str] = field(default_factory=list)  # why it is not good enough to enrol; empty = fine


def frontalness(landmarks5: np.ndarray) -> float:
    """Yaw symmetry from dlib's 5 points: where the nose base falls along the eye line (0.5 = frontal)."""
    pts = np.asarray(landmarks5, np.float64)
    eye_a, eye_b = pts[0:2].mean(0), pts[2:4].mean(0)
    axis = eye_a - eye_b
    norm2 = float(axis @ axis)
    if norm2 < 1e-9:
        return 0.0
    t = float((pts[4] - eye_b) @ axis) / norm2
    return float(np.clip(1.0 - 2.0 * abs(t - 0.5), 0.0, 1.0))


def sharpness(chip: np.ndarray) -> float:
    grey = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def face_quality(
    rgb: np.ndarray, box: tuple[float, float, float, float], landmarks5: np.ndarray, chip=None
) -> FaceQuality:
    """Quality of one face; pass ``chip`` when the aligned chip is already computed."""
    x1, y1, x2, y2 = box
    size = float(min(x2 - x1, y2 - y1))
    if chip is None:
        chip = face_chip(rgb, landmarks5)
    blur = sharpness(chip)
    front = frontalness(landmarks5)
    size_s = float(np.clip(size / GOOD_SIZE_PX, 0.0, 1.0))
    blur_s = float(np.clip(math.log1p(blur) / math.log1p(GOOD_BLUR), 0.0, 1.0))
    score = (size_s**0.3) * (blur_s**0.4) * (front**0.3)
    reasons = []
    if size < ENROL_MIN_SIZE_PX:
        reasons.append(f"face too small ({size:.0f} px < {ENROL_MIN_SIZE_PX:.0f})")
    if blur < ENROL_MIN_BLUR:
        reasons.append(f"face blurred (variance of Laplacian {blur:.1f} < {ENROL_MIN_BLUR:.0f})")
    if front < ENROL_MIN_FRONTALNESS:
        reasons.append(f"face not frontal (frontalness {front:.2f} < {ENROL_MIN_FRONTALNESS})")
    return FaceQuality(float(score), size, blur, front, reasons)


def is_enrolable(q: FaceQuality) -> tuple[bool, str]:
    """(ok, reason): ok when no check failed; reason says which failed, or "ok"."""
    if q.reasons:
        return False, "; ".join(q.reasons)
    return True, "ok"
