"""Face quality: a sharp frontal face is enrolable; blurred, tiny or turned faces are refused with a reason."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facestream.engines.faces.detector import HogDetector
from facestream.engines.faces.landmarks import LandmarkPredictor
from facestream.engines.faces.quality import FaceQuality, face_quality, frontalness, is_enrolable


@pytest.fixture(scope="module")
def face(astronaut):
    det = HogDetector(upsample=1).detect(astronaut)[0]
    return det.box, LandmarkPredictor().predict(astronaut, det.box)


def test_sharp_frontal_face_is_enrolable(astronaut, face):
    box, lm = face
    q = face_quality(astronaut, box, lm)
    assert isinstance(q, FaceQuality)
    assert q.reasons == [] and is_enrolable(q) == (True, "ok")
    assert 0.7 < q.score <= 1.0 and q.frontalness > 0.8 and q.size_px >= 80


def test_blurred_face_is_refused(astronaut, face):
    box, lm = face
    sharp = face_quality(astronaut, box, lm)
    blurred = face_quality(cv2.GaussianBlur(astronaut, (0, 0), 3.0), box, lm)
    ok, reason = is_enrolable(blurred)
    assert not ok and "blurred" in reason
    assert blurred.blur < sharp.blur / 5 and blurred.score < sharp.score


def test_tiny_face_is_refused(astronaut, face):
    box, lm = face
    f = 0.3
    small = cv2.resize(astronaut, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    q = face_quality(small, tuple(v * f for v in box), lm * f)
    ok, reason = is_enrolable(q)
    assert not ok and "too small" in reason
    assert q.score < face_quality(astronaut, box, lm).score


def test_frontalness_drops_when_the_nose_moves_to_one_eye():
    frontal = np.array([(60, 40), (50, 40), (20, 40), (30, 40), (40, 60)], np.float32)
    turned = frontal.copy()
    turned[4] = (58, 60)  # nose below the outer corner of one eye: a strong yaw
    assert frontalness(frontal) == pytest.approx(1.0)
    assert frontalness(turned) < 0.2
    box = (10, 20, 70, 80)
    img = np.random.default_rng(0).integers(0, 255, (100, 100, 3), dtype=np.uint8)
    assert any("frontal" in r for r in face_quality(img, box, turned).reasons)
