"""Preprocess's detector view: large frames shrunk to the detector box, small ones enlarged (at most
``max_upscale``) so that small faces reach the detector's window; boxes map back to source pixels."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facestream.engines.faces.detector import HogDetector
from facestream.pipeline.config import PipelineConfig
from facestream.pipeline.records import to_source
from facestream.pipeline.sources.demo import FACE_BOX_PHOTO
from facestream.pipeline.stages.preprocess import detector_view


@pytest.mark.parametrize(("shape", "upscale", "want"), [
    ((1080, 1920), 2.0, (720, 1280)),  # shrunk to fit, as before
    ((720, 1280), 2.0, (720, 1280)),  # fits: untouched
    ((360, 640), 2.0, (720, 1280)),  # enlarged to fill the box
    ((360, 640), 1.0, (360, 640)),  # enlarging off
    ((240, 320), 2.0, (480, 640)),  # at most max_upscale
    ((500, 500), 2.0, (720, 720)),  # the height binds
])
def test_frames_fit_the_detector_box(shape, upscale, want):
    rgb, scale = detector_view(np.zeros((*shape, 3), np.uint8), 1280, 720, upscale)
    assert rgb.shape[:2] == want
    assert scale == pytest.approx(want[1] / shape[1], rel=1e-3)


def test_the_default_enlarges_small_frames():
    assert PipelineConfig().preprocess.max_upscale == 2.0


def test_a_28px_face_in_a_360p_frame_is_found_only_when_enlarged(astronaut):
    """The issue's case: a 640x360 clip whose face is 28 px. HOG upsample 1 (the default) looks for 40 px."""
    k = 28.0 / (FACE_BOX_PHOTO[2] - FACE_BOX_PHOTO[0])
    small = cv2.resize(astronaut, (round(512 * k), round(512 * k)), interpolation=cv2.INTER_AREA)
    frame = np.full((360, 640, 3), 90, np.uint8)
    x0, y0 = 300, 150
    frame[y0 : y0 + small.shape[0], x0 : x0 + small.shape[1]] = small
    bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    truth = (x0 + FACE_BOX_PHOTO[0] * k, y0 + FACE_BOX_PHOTO[1] * k, x0 + FACE_BOX_PHOTO[2] * k,
             y0 + FACE_BOX_PHOTO[3] * k)
    hog = HogDetector(1)
    view, scale = detector_view(bgr, 1280, 720, 1.0)
    assert hog.detect(view) == []
    view, scale = detector_view(bgr, 1280, 720, 2.0)
    found = hog.detect(view)  # best score first
    assert found and found[0].score > 0.5
    box = to_source(found[0].box, scale)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    assert abs(cx - (truth[0] + truth[2]) / 2) < 6 and abs(cy - (truth[1] + truth[3]) / 2) < 8
    assert 20 <= box[2] - box[0] <= 40
