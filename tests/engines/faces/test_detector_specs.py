"""The detector specs own every per-detector choice: here, how a still photo is searched."""

from __future__ import annotations

import numpy as np
import pytest

from facestream.engines.faces.detector_specs import DETECTOR_TYPES, SMALL_STILL_SIDE, spec_class


def test_hog_searches_small_still_photos_upsampled_and_large_ones_as_they_are():
    hog = spec_class("hog")
    assert hog.still_options(SMALL_STILL_SIDE - 1) == {"upsample": 1}
    assert hog.still_options(SMALL_STILL_SIDE) == {"upsample": 0}


@pytest.mark.parametrize("kind", [k for k in DETECTOR_TYPES if k != "hog"])
def test_other_detectors_search_still_photos_with_their_defaults(kind):
    assert spec_class(kind).still_options(100) == {} and spec_class(kind).still_options(4000) == {}


def test_still_analyzers_build_one_analyzer_per_option_set_the_spec_asks_for():
    from facestream.pipeline.recognition.stills import StillAnalyzers

    analyzers = StillAnalyzers("hog")
    small = analyzers.for_image(np.zeros((SMALL_STILL_SIDE - 1, 1200, 3), np.uint8))
    large = analyzers.for_image(np.zeros((SMALL_STILL_SIDE, 1200, 3), np.uint8))
    assert small is analyzers.for_image(np.zeros((200, 300, 3), np.uint8))
    upsample = [getattr(a.detector, "inner", a.detector).upsample for a in (small, large)]
    assert upsample == [1, 0]
