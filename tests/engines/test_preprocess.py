"""The recipe's crop (crop -> 128x128 -> grey -> /255) from BGR, RGB or grey images."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from facestream.engines.preprocess import face_crop_128


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    return data.astronaut()


def test_crop_is_grey_128_in_unit_range(rgb):
    crop = face_crop_128(rgb, (170, 70, 260, 170), order="rgb")
    assert crop.shape == (128, 128) and crop.dtype == np.float32
    assert 0.0 <= crop.min() and crop.max() <= 1.0 and crop.std() > 0.05


def test_rgb_order_matches_the_same_frame_in_bgr(rgb):
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    for box in [(170, 70, 260, 170), (-20, -20, 100, 90), (400, 300, 700, 700)]:
        np.testing.assert_array_equal(face_crop_128(rgb, box, order="rgb"), face_crop_128(bgr, box))


def test_box_crop_equals_cropping_first(rgb):
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    np.testing.assert_array_equal(face_crop_128(bgr, (170.4, 69.6, 260, 170)), face_crop_128(bgr[70:170, 170:260]))
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    np.testing.assert_array_equal(face_crop_128(grey, (170, 70, 260, 170)), face_crop_128(bgr, (170, 70, 260, 170)))


def test_bad_box_and_order_are_named(rgb):
    with pytest.raises(ValueError, match="empty inside a 512x512 image"):
        face_crop_128(rgb, (600, 600, 700, 700))
    with pytest.raises(ValueError, match="order must be"):
        face_crop_128(rgb, order="rgba")
