"""The detector specs own every per-detector choice: here, how a still photo is searched."""

from __future__ import annotations

import numpy as np
import pytest

from facestream.engines.faces.detector_specs import (
    DETECTOR_TYPES,
    SMALL_STILL_SIDE,
    TINY_STILL_SIDE,
    spec_class,
)


def test_hog_searches_small_still_photos_upsampled_and_large_ones_as_they_are():
    hog = spec_class("hog")
    assert hog.still_options(SMALL_STILL_SIDE - 1) == {"upsample": 1}
    assert hog.still_options(SMALL_STILL_SIDE) == {"upsample": 0}


@pytest.mark.parametrize("kind", [k for k in DETECTOR_TYPES if k != "hog"])
def test_other_detectors_search_still_photos_with_their_defaults(kind):
    assert spec_class(kind).still_options(100) == {} and spec_class(kind).still_options(4000) == {}
    assert spec_class(kind).still_retry_options(100) is None


def test_hog_searches_a_thumbnail_without_faces_again_at_4x():
    hog = spec_class("hog")
    assert hog.still_retry_options(TINY_STILL_SIDE) == {"upsample": 2}
    assert hog.still_retry_options(TINY_STILL_SIDE + 1) is None


def test_still_analyzers_build_one_analyzer_per_option_set_the_spec_asks_for():
    from facestream.pipeline.recognition.stills import StillAnalyzers

    analyzers = StillAnalyzers("hog")
    small = analyzers.for_image(np.zeros((SMALL_STILL_SIDE - 1, SMALL_STILL_SIDE + 100, 3), np.uint8))
    large = analyzers.for_image(np.zeros((SMALL_STILL_SIDE, SMALL_STILL_SIDE + 100, 3), np.uint8))
    assert small is analyzers.for_image(np.zeros((200, 300, 3), np.uint8))
    upsample = [getattr(a.detector, "inner", a.detector).upsample for a in (small, large)]
    assert upsample == [1, 0]


def test_a_phone_sized_photo_is_searched_for_faces_under_80_px():
    """A 4:3 photo shrunk to 1600x1200 (what identify and enrolment do with a phone's photo) holding a 45 px
    face: found, as face_recognition's CLI (HOG upsampled once) finds it; HOG at 1x sees nothing there."""
    import cv2
    from skimage.data import astronaut

    from facestream.engines.faces.detector import HogDetector
    from facestream.pipeline.recognition.stills import StillAnalyzers

    photo = np.full((1200, 1600, 3), 127, np.uint8)
    photo[400:656, 600:856] = cv2.resize(astronaut(), None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    assert HogDetector(upsample=0).detect(photo) == []
    faces = StillAnalyzers("hog").for_image(photo).analyze(photo)
    assert faces and all(40 <= f.box[2] - f.box[0] < 80 for f in faces)


def test_a_thumbnail_with_a_face_under_40_px_is_searched_again_and_the_face_found():
    """A 300x400 photo holding a 23 px face (the astronaut at a quarter size): HOG upsampled once (as
    face_recognition's CLI searches) finds nothing, so the photo is searched again at 4x and the face found."""
    import cv2
    from skimage.data import astronaut

    from facestream.pipeline.recognition.stills import StillAnalyzers

    photo = np.full((300, 400, 3), 127, np.uint8)
    photo[100:228, 150:278] = cv2.resize(astronaut(), None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)
    analyzers = StillAnalyzers("hog")
    assert analyzers.for_image(photo).analyze(photo) == []  # the first search, upsampled once
    faces = analyzers.analyze(photo)
    assert len(faces) == 1 and 18 <= faces[0].box[2] - faces[0].box[0] < 32
    assert faces[0].embedding is not None
    blank = np.full((300, 400, 3), 127, np.uint8)
    assert analyzers.analyze(blank) == []  # searched twice, still nothing
