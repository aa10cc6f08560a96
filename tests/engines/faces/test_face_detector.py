"""Detector post-processing: pyramid geometry, NMS, policies; HOG wrapper vs dlib."""

from __future__ import annotations

import cv2
import dlib
import numpy as np
import pytest

from facestream.engines.faces.detector import FaceDetector, HogDetector, nms_dlib
from facestream.engines.faces.pyramid import level_sizes, resize_bilinear, tile_layout, tiled_to_image
from facestream.errors import FacestreamError


@pytest.fixture(scope="module")
def detector(dlib_store):
    return FaceDetector(store=dlib_store, backend="onnxruntime")


def test_tile_layout_fits_and_does_not_overlap():
    rects, rows, cols = tile_layout(360, 640)
    sizes = level_sizes(360, 640)
    assert [(r.height, r.width) for r in rects] == sizes[: len(rects)]
    assert (rows, cols) == (1353, 662)
    for i, a in enumerate(rects):
        assert 0 <= a.left and a.right < cols and 0 <= a.top and a.bottom < rows
        for b in rects[i + 1 :]:
            assert a.right < b.left or b.right < a.left or a.bottom < b.top or b.bottom < a.top


def test_levels_shrink_by_five_sixths():
    sizes = level_sizes(120, 200)
    assert sizes[:3] == [(120, 200), (100, 166), (83, 138)]
    assert sizes[-1][0] >= 5


def test_resize_bilinear_is_align_corners():
    ramp = np.tile(np.arange(11, dtype=np.float32), (3, 5, 1))  # (C, H, W): value = column
    out = resize_bilinear(ramp, 3, 6)
    assert out.shape == (3, 3, 6)
    np.testing.assert_allclose(out[1, 2], [0, 2, 4, 6, 8, 10], atol=1e-6)
    grid = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    np.testing.assert_allclose(resize_bilinear(grid, 2, 2)[0], [[0, 3], [8, 11]])  # corners stay corners


def test_tiled_to_image_level0_is_a_shift():
    rects, _, _ = tile_layout(200, 300)
    r0 = rects[0]
    box = (r0.left + 10, r0.top + 20, r0.left + 89, r0.top + 99)
    assert tiled_to_image(rects, box) == pytest.approx((10, 20, 89, 99))


def test_nms_uses_the_enclosing_box():
    boxes = [(0, 0, 79, 79), (20, 0, 99, 79), (60, 0, 139, 79)]
    # a/b: intersection 60x80, enclosing 100x80 -> 0.6 > 0.338: dropped; a/c: 20x80 / 140x80 = 0.14: kept
    assert nms_dlib(boxes, [3.0, 2.0, 1.0], 0.338) == [0, 2]


def test_detect_batch_equals_detect(detector, astronaut):
    crop = np.ascontiguousarray(astronaut[:300, 100:450])
    flipped = np.ascontiguousarray(crop[:, ::-1])
    single = [detector.detect(crop), detector.detect(flipped)]
    batch = detector.detect_batch([crop, flipped])
    for a, b in zip(single, batch, strict=True):
        assert [d.box for d in a] == [d.box for d in b]
        assert [d.score for d in a] == pytest.approx([d.score for d in b], abs=1e-5)
    assert len(single[0]) == 1


def test_min_face_scales_the_search(dlib_store, astronaut):
    big = cv2.resize(astronaut, (1024, 1024))  # face ~ 190 px
    fast = FaceDetector(store=dlib_store, backend="onnxruntime", min_face=160)
    dets = fast.detect(big)
    assert len(dets) == 1
    x1, y1, x2, y2 = dets[0].box
    assert 150 <= x2 - x1 <= 260 and 300 <= (x1 + x2) / 2 <= 460
    # a 40 px face is missed at the default size and found with min_face=40 (dlib's upsample=1)
    small = cv2.resize(astronaut[:300, 100:450], (140, 120), interpolation=cv2.INTER_AREA)
    assert FaceDetector(store=dlib_store, backend="onnxruntime").detect(small) == []
    assert len(FaceDetector(store=dlib_store, backend="onnxruntime", min_face=40).detect(small)) == 1


def test_fixed_pyramid_only_finds_faces_near_the_window(dlib_store, astronaut):
    fixed = FaceDetector(store=dlib_store, backend="onnxruntime", pyramid="fixed")
    tiled = FaceDetector(store=dlib_store, backend="onnxruntime")
    crop = np.ascontiguousarray(astronaut[:300, 100:450])  # face ~ 90 px
    near = fixed.detect(crop)
    assert len(near) == 1 and near[0].box[2] - near[0].box[0] == 80  # one scale: always an 80 px box
    large = cv2.resize(crop, None, fx=2.0, fy=2.0)  # face ~ 190 px: only deeper pyramid levels see it
    assert fixed.detect(large) == []
    assert len(tiled.detect(large)) == 1


def test_threshold_filters(dlib_store, astronaut):
    crop = np.ascontiguousarray(astronaut[:300, 100:450])
    strict = FaceDetector(store=dlib_store, backend="onnxruntime", score_threshold=5.0)
    assert strict.detect(crop) == []


def test_bad_inputs_are_user_errors(detector, dlib_store):
    with pytest.raises(FacestreamError, match="RGB uint8"):
        detector.detect(np.zeros((50, 50), np.uint8))
    with pytest.raises(FacestreamError, match="pyramid"):
        FaceDetector(store=dlib_store, pyramid="spiral")


def test_hog_detector_matches_dlib(astronaut):
    ours = HogDetector(upsample=1).detect(astronaut)
    rects, scores, _ = dlib.get_frontal_face_detector().run(astronaut, 1, 0.0)
    assert len(ours) == len(rects) >= 1
    ref = sorted(
        ((r.left(), r.top(), r.right() + 1, r.bottom() + 1), s) for r, s in zip(rects, scores, strict=True)
    )
    assert sorted((d.box, d.score) for d in ours) == ref
