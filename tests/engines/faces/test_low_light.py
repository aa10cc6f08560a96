"""Dark frames: LFW faces darkened as ffmpeg's eq=gamma=0.5:brightness=-0.08,noise=alls=12 darkens them are
found by the enhanced detector where plain HOG misses them, and still named, with no wrong name."""

from __future__ import annotations

import cv2
import numpy as np

from facestream.engines.faces.analyzer import FaceAnalyzer
from facestream.engines.faces.detector import HogDetector
from facestream.engines.faces.low_light import (
    DARK_CHIP_LUMA,
    DARK_LUMA,
    LowLightDetector,
    enhance_chip,
    enhance_dark,
    is_dark,
    mean_luma,
    simulate_low_light,
)

THRESHOLD = 0.92  # the matcher's default cosine


def _unit(v):
    v = np.atleast_2d(np.asarray(v, np.float32))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_simulated_darkening_matches_ffmpeg_levels():
    # ffmpeg's eq on limited-range Y: grey 128 -> raw 126 -> v = 126 / 255 - 0.08 -> 256 v^2 = 43.8 raw -> 32.4
    grey = np.full((64, 64, 3), 128, np.uint8)
    dark = simulate_low_light(grey, np.random.default_rng(0), noise=0.0)
    assert abs(mean_luma(dark) - 32.4) < 1.5
    assert is_dark(dark) and not is_dark(grey)
    noisy = simulate_low_light(grey, np.random.default_rng(0))
    assert 5.5 < float(cv2.cvtColor(noisy, cv2.COLOR_RGB2YCrCb)[..., 0].std()) < 8.5  # 12 / sqrt(3)


def test_enhancement_brightens_only_dark_frames(astronaut):
    dark = simulate_low_light(astronaut, np.random.default_rng(1))
    assert mean_luma(dark) < DARK_LUMA < mean_luma(enhance_dark(dark))
    det = LowLightDetector(HogDetector(1))
    assert det.detect(astronaut)[0].box == HogDetector(1).detect(astronaut)[0].box and det.dark_frames == 0


def test_a_dark_frames_chip_is_brightened_for_the_embedder_and_its_quality_kept(astronaut, dlib_store):
    enhanced = FaceAnalyzer("hog", store=dlib_store, backend="onnxruntime", upsample=1)
    plain = FaceAnalyzer("hog", store=dlib_store, backend="onnxruntime", upsample=1, low_light=False)
    dark = simulate_low_light(astronaut, np.random.default_rng(2))
    dets = enhanced.detector.detect(dark)
    (face,), (raw,) = enhanced.describe(dark, dets[:1]), plain.describe(dark, dets[:1])
    assert mean_luma(raw.chip) + 30 < mean_luma(face.chip)  # lifted towards a mean of 0.45 (115)
    assert np.array_equal(face.chip, enhance_chip(raw.chip)) and face.quality == raw.quality
    lit = enhanced.detector.detect(astronaut)[:1]
    assert np.array_equal(enhanced.describe(astronaut, lit)[0].chip, plain.describe(astronaut, lit)[0].chip)


def test_dark_lfw_faces_are_found_and_named(dlib_store, lfw_images):
    images = lfw_images()  # 10 people x 10 photos, in folder order
    plain = FaceAnalyzer("hog", store=dlib_store, backend="onnxruntime", upsample=1, low_light=False)
    enhanced = FaceAnalyzer("hog", store=dlib_store, backend="onnxruntime", upsample=1)
    assert isinstance(enhanced.detector, LowLightDetector)
    gallery = _unit([plain.analyze(images[10 * p])[0].embedding for p in range(10)])
    found_plain = found = named = wrong = 0
    probes = [(i // 10, i) for i in range(100) if i % 10 in (1, 4, 7)]  # 30 probes, 3 per person
    for person, i in probes:
        dark = simulate_low_light(images[i], np.random.default_rng(i))
        found_plain += bool(plain.detector.detect(dark))
        faces = enhanced.analyze(dark)
        if not faces:
            continue
        found += 1
        sims = _unit(faces[0].embedding)[0] @ gallery.T
        best = int(np.argmax(sims))
        if sims[best] >= THRESHOLD:
            named += best == person
            wrong += best != person
    assert found == len(probes) > found_plain  # the enhancement finds faces plain HOG misses
    assert wrong == 0
    assert named >= 0.8 * len(probes)


def test_a_lit_face_on_a_dark_background_keeps_its_own_chip(astronaut, dlib_store):
    """A letterboxed or night-sky frame is dark, but its face is lit: its chip goes to the embedder as it is."""
    enhanced = FaceAnalyzer("hog", store=dlib_store, backend="onnxruntime", upsample=1)
    plain = FaceAnalyzer("hog", store=dlib_store, backend="onnxruntime", upsample=1, low_light=False)
    canvas = np.zeros((1100, 1100, 3), np.uint8)
    canvas[300:812, 300:812] = astronaut
    assert is_dark(canvas)
    dets = enhanced.detector.detect(canvas)[:1]
    assert dets
    (face,), (raw,) = enhanced.describe(canvas, dets), plain.describe(canvas, dets)
    assert mean_luma(raw.chip) >= DARK_CHIP_LUMA and np.array_equal(face.chip, raw.chip)
