"""Small faces: LFW faces shrunk to 24-32 px are found (HOG upsampled twice) and named by the size-aware
threshold when their score reaches it, left unknown otherwise, never wrongly named; on the held-out half of
the LFW people (the shifts were chosen on the other half and ORL, bench/bench_small_faces.py)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from facestream.engines.faces.align import face_chip
from facestream.engines.faces.analyzer import FaceAnalyzer
from facestream.engines.faces.detector import HogDetector
from facestream.pipeline.recognition.matcher import DEFAULT_THRESHOLD, MIN_NAMED_FACE_PX, size_aware_threshold
from facestream.pipeline.recognition.stills import named_at_size

LFW = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "lfw_subset_10x10"


def test_threshold_rule_refuses_tiny_faces_and_keeps_large_ones():
    assert size_aware_threshold(MIN_NAMED_FACE_PX - 1) == float("inf")
    assert not named_at_size(0.999, 19.0)
    assert size_aware_threshold(200.0, 0.9) == 0.9
    for side in (20, 24, 28, 32, 48, 64):
        assert DEFAULT_THRESHOLD <= size_aware_threshold(side) < DEFAULT_THRESHOLD + 0.01


def _unit(v):
    v = np.atleast_2d(np.asarray(v, np.float32))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.parametrize("size", [24, 32])
def test_small_lfw_faces_named_or_unknown_never_wrong(size):
    people = sorted(p for p in LFW.glob("*") if p.is_dir())[1::2]  # the held-out half
    if not people:
        pytest.skip(f"LFW subset not found at {LFW} (../shared/data is absent)")
    analyzer = FaceAnalyzer("hog", upsample=1, low_light=False, backend="onnxruntime")
    up2 = HogDetector(2)
    gallery, named, unknown, wrong, probes = [], 0, 0, 0, 0
    photos = [[cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in sorted(p.glob("*.jpg"))[:4]]
              for p in people]
    gallery = _unit([analyzer.analyze(ph[0])[0].embedding for ph in photos])
    for person, ph in enumerate(photos):
        for rgb in ph[1:]:  # 3 probes per person
            box = analyzer.detector.detect(rgb)[0].box
            s = size / (box[2] - box[0])
            small = cv2.copyMakeBorder(cv2.resize(rgb, None, fx=s, fy=s, interpolation=cv2.INTER_AREA),
                                       40, 40, 40, 40, cv2.BORDER_REPLICATE)
            dets = up2.detect(small)
            assert dets, f"a {size} px face was not found by HOG upsample 2"
            d = dets[0]
            probes += 1
            chip = face_chip(small, analyzer.landmarks.predict(small, d.box))
            sims = _unit(analyzer.embedder.embed(chip))[0] @ gallery.T
            best = int(np.argmax(sims))
            if not named_at_size(float(sims[best]), min(d.box[2] - d.box[0], d.box[3] - d.box[1])):
                unknown += 1
            elif best == person:
                named += 1
            else:
                wrong += 1
    assert wrong == 0
    assert named >= 0.6 * probes  # bench: 24 px 0.82, 32 px 0.91 of 45 probes
