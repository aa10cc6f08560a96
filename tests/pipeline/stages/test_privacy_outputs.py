"""Privacy in outputs: unknown faces blurred in video frames; retention removes old crops and events."""

from __future__ import annotations

import logging
import os
import time

import cv2
import numpy as np

from facestream.pipeline.records import FaceRecord
from facestream.pipeline.stages.annotate import annotate
from facestream.pipeline.stages.retention import RetentionSweeper


def _face_frame() -> np.ndarray:
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def _detail(img: np.ndarray, box) -> float:
    x1, y1, x2, y2 = box
    return float(cv2.Laplacian(cv2.cvtColor(img[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def test_unknown_faces_are_blurred_and_known_ones_are_not():
    img = _face_frame()
    box = (160, 50, 260, 170)
    faces_unknown = [FaceRecord(box, 1.0, 0.5, identity="unknown#3")]
    faces_known = [FaceRecord(box, 1.0, 0.5, identity="Eileen Collins")]
    blurred = annotate(img, faces_unknown, 1.0, blur_unknown=True)
    kept = annotate(img, faces_known, 1.0, blur_unknown=True)
    inner = (170, 60, 250, 160)
    assert _detail(blurred, inner) < 0.2 * _detail(img, inner), "an unknown face must be unrecognisable"
    assert abs(_detail(kept, inner) - _detail(img, inner)) < 0.05 * _detail(img, inner)
    # Outside the face nothing changes.
    np.testing.assert_array_equal(blurred[300:, 300:], img[300:, 300:])
    # Without the option, faces are boxed, not blurred.
    plain = annotate(img, faces_unknown, 1.0, blur_unknown=False)
    assert _detail(plain, inner) > 0.9 * _detail(img, inner)


def test_blur_follows_the_detector_scale():
    img = cv2.resize(_face_frame(), (256, 256))
    out = annotate(img, [FaceRecord((160, 50, 260, 170), 1.0, 0.5)], 0.5, blur_unknown=True)
    assert _detail(out, (85, 30, 125, 80)) < 0.3 * _detail(img, (85, 30, 125, 80))


def test_retention_deletes_only_old_crops_and_event_files(tmp_path):
    (tmp_path / "crops" / "cam").mkdir(parents=True)
    (tmp_path / "events").mkdir()
    old_crop, new_crop = tmp_path / "crops" / "cam" / "old.jpg", tmp_path / "crops" / "cam" / "new.jpg"
    old_ev, new_ev = tmp_path / "events" / "2026-01-01.jsonl", tmp_path / "events" / "2026-11-28.jsonl"
    for p in (old_crop, new_crop, old_ev, new_ev):
        p.write_text("x")
    ten_days = time.time() - 10 * 86400
    for p in (old_crop, old_ev):
        os.utime(p, (ten_days, ten_days))
    removed = RetentionSweeper(tmp_path, 7, logging.getLogger("t")).sweep()
    assert removed == 2
    assert not old_crop.exists() and not old_ev.exists() and new_crop.exists() and new_ev.exists()
    assert RetentionSweeper(tmp_path, 0, logging.getLogger("t")).maybe_sweep() == 0, "0 days = keep everything"
