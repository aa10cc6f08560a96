"""Alignment: our numpy get_face_chip against dlib.get_face_chip, pixel for pixel; the 128x128 grey crop."""

from __future__ import annotations

import math

import cv2
import dlib
import numpy as np
import pytest

from facestream.engines.dlib_import import model_file
from facestream.engines.faces.align import (
    chip_rect,
    face_chip,
    face_chip_numpy,
    grey_crop_128,
    pyramid_down2,
    similarity_transform,
)
from facestream.engines.faces.landmarks import LandmarkPredictor


@pytest.fixture(scope="module")
def shape_predictor():
    return dlib.shape_predictor(str(model_file("shape_predictor_5_face_landmarks.dat")))


def _faces(img, predictor, upsample=1):
    for rect in dlib.get_frontal_face_detector()(img, upsample):
        yield rect, predictor(img, rect)


def _assert_same_chips(img, predictor, upsample=1):
    n = 0
    for _, shape in _faces(img, predictor, upsample):
        ref = np.asarray(dlib.get_face_chip(img, shape, 150, 0.25))
        lm = np.array([(shape.part(i).x, shape.part(i).y) for i in range(5)], np.float32)
        for chip in (face_chip, face_chip_numpy):  # dlib's own (whole-pixel landmarks) and the numpy copy
            ours = chip(img, lm)
            assert ours.shape == (150, 150, 3) and ours.dtype == np.uint8
            diff = np.abs(ours.astype(int) - ref.astype(int))
            assert diff.max() <= 1 and (diff > 0).mean() < 0.001, f"{chip.__name__}: max diff {diff.max()}"
        n += 1
    return n


def test_chip_equals_dlib_on_astronaut(astronaut, shape_predictor):
    assert _assert_same_chips(astronaut, shape_predictor) >= 1


def test_chip_equals_dlib_when_dlib_uses_its_pyramid(astronaut, shape_predictor):
    # a face > 300 px makes dlib extract from pyramid_down<2> levels (depth 1 and 2)
    for size in (1100, 1800):
        big = cv2.resize(astronaut, (size, size), interpolation=cv2.INTER_LINEAR)
        assert _assert_same_chips(big, shape_predictor, upsample=0) >= 1


def test_chip_equals_dlib_on_lfw(lfw_images, shape_predictor):
    total = sum(_assert_same_chips(img, shape_predictor, 0) for img in lfw_images(step=10))
    assert total >= 8


def test_landmark_predictor_matches_dlib(astronaut, shape_predictor):
    ours = LandmarkPredictor()
    for rect, shape in _faces(astronaut, shape_predictor):
        lm = ours.predict(astronaut, (rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1))
        ref = np.array([(shape.part(i).x, shape.part(i).y) for i in range(5)], np.float32)
        assert lm.shape == (5, 2) and lm.dtype == np.float32
        np.testing.assert_array_equal(lm, ref)


def test_landmarks_from_a_crop_equal_dlib_on_the_whole_frame_anywhere_in_it(astronaut, shape_predictor):
    # The predictor crops around the box; faces at the frame's edges and corners, big and small, must come out
    # as dlib's on the whole frame.
    rect, _ = next(_faces(astronaut, shape_predictor))
    face = astronaut[rect.top(): rect.bottom() + 1, rect.left(): rect.right() + 1]
    ours = LandmarkPredictor()
    frame = np.zeros((720, 1280, 3), np.uint8)
    for side, (x, y) in [(60, (0, 0)), (60, (1220, 660)), (40, (640, 0)), (200, (1080, 300)), (90, (500, 400))]:
        img = frame.copy()
        img[y: y + side, x: x + side] = cv2.resize(face, (side, side))
        for dx in (-7, 0, 5):  # boxes a little off the face, as a detector gives them
            box = (max(0, x + dx), y, min(1280, x + dx + side), min(720, y + side))
            shape = shape_predictor(img, dlib.rectangle(box[0], box[1], box[2] - 1, box[3] - 1))
            ref = np.array([(shape.part(i).x, shape.part(i).y) for i in range(5)], np.float32)
            np.testing.assert_array_equal(ours.predict(img, box), ref)


def test_similarity_transform_recovers_a_known_one():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 100, (5, 2))
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -4.0])
    m = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    got_m, got_t = similarity_transform(src, src @ m.T + shift)
    np.testing.assert_allclose(got_m, m, atol=1e-9)
    np.testing.assert_allclose(got_t, shift, atol=1e-9)


def test_chip_rect_scales_with_the_face():
    lm = np.array([(60, 40), (50, 41), (20, 40), (30, 41), (40, 60)], np.float64)
    (l1, t1, r1, b1), a1 = chip_rect(lm)
    (l2, t2, r2, b2), a2 = chip_rect(lm * 2)
    assert (r2 - l2 + 1) == pytest.approx(2 * (r1 - l1 + 1), rel=1e-9)
    assert a1 == pytest.approx(a2)


def test_pyramid_down2_shape_and_smoothing():
    img = np.zeros((40, 41, 3), np.uint8)
    img[::2] = 255  # stripes: the binomial filter averages them out
    out = pyramid_down2(img)
    assert out.shape == (18, 19, 3)
    assert 100 < out.mean() < 155 and out.std() < 40


def test_grey_crop_128(astronaut, shape_predictor):
    _, shape = next(_faces(astronaut, shape_predictor))
    lm = np.array([(shape.part(i).x, shape.part(i).y) for i in range(5)], np.float32)
    crop = grey_crop_128(astronaut, lm, order="rgb")
    assert crop.shape == (128, 128) and crop.dtype == np.float32
    assert 0.0 <= crop.min() and crop.max() <= 1.0 and crop.std() > 0.05
    boxed = grey_crop_128(cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR), (170, 70, 260, 170))
    assert boxed.shape == (128, 128)
    with pytest.raises(ValueError):
        grey_crop_128(astronaut, np.zeros((3, 2)))


def test_sub_pixel_landmarks_are_taken_as_they_are(astronaut, shape_predictor):
    _, shape = next(_faces(astronaut, shape_predictor))
    lm = np.array([(shape.part(i).x, shape.part(i).y) for i in range(5)], np.float32) + np.float32(0.4)
    chip = face_chip(astronaut, lm)
    np.testing.assert_array_equal(chip, face_chip_numpy(astronaut, lm))
    assert np.abs(chip.astype(int) - face_chip(astronaut, np.round(lm)).astype(int)).max() > 0, \
        "0.4 px moves the chip: it is not rounded to dlib's whole pixels"
