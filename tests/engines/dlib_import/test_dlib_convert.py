"""The ONNX conversions against dlib itself, on real faces: embeddings (cosine >= 0.9999) and detections."""

from __future__ import annotations

import cv2
import dlib
import numpy as np
import onnx
import pytest

from facestream.engines.dlib_import import DETECTOR_NAME, EMBEDDER_NAME, model_file
from facestream.engines.manifest import sha256_file


@pytest.fixture(scope="module")
def dlib_parts():
    return {
        "hog": dlib.get_frontal_face_detector(),
        "shape": dlib.shape_predictor(str(model_file("shape_predictor_5_face_landmarks.dat"))),
        "rec": dlib.face_recognition_model_v1(str(model_file("dlib_face_recognition_resnet_model_v1.dat"))),
        "cnn": dlib.cnn_face_detection_model_v1(str(model_file("mmod_human_face_detector.dat"))),
    }


def _dlib_chips(parts, images, upsample=0):
    chips = []
    for img in images:
        for rect in parts["hog"](img, upsample):
            chips.append(np.asarray(dlib.get_face_chip(img, parts["shape"](img, rect), 150, 0.25)))
    return chips


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_manifests_and_files(dlib_store):
    for name in (EMBEDDER_NAME, DETECTOR_NAME):
        entry = dlib_store.get(name)
        m = entry.manifest
        assert m.licence == "CC0 1.0, dlib models by Davis King"
        assert m.variants == {"fp16": "model.fp16.onnx"}
        assert sha256_file(entry.onnx_path()) == m.sha256
        assert sha256_file(entry.onnx_path("fp16")) == m.variant_sha256["fp16"]
        assert "sha256" in m.source and "face_recognition_models" in m.source
        assert m.inputs[0].shape[0] == "batch" and m.preprocessing["color"] == "RGB"
        prof = m.profiles["image"]
        assert prof.min[0] <= prof.opt[0] <= prof.max[0]
        onnx.checker.check_model(onnx.load(str(entry.onnx_path())))
    det = dlib_store.get(DETECTOR_NAME).manifest
    assert det.inputs[0].shape == ["batch", 3, "height", "width"]
    assert (det.extra["stride"], det.extra["offset"]) == (8, 14)


def test_embedder_matches_dlib_on_astronaut(dlib_store, dlib_parts, astronaut):
    from facestream.engines.faces.embedder import FaceEmbedder

    chips = _dlib_chips(dlib_parts, [astronaut], upsample=1)
    assert len(chips) >= 1
    ref = np.array([np.array(d) for d in dlib_parts["rec"].compute_face_descriptor(chips)])
    ours = FaceEmbedder(store=dlib_store, backend="onnxruntime").embed(np.stack(chips))
    assert ours.shape == (len(chips), 128) and ours.dtype == np.float32
    assert np.all(_cosines(ref, ours) >= 0.9999)
    assert np.abs(ref - ours).max() < 1e-4


def test_embedder_matches_dlib_on_lfw(dlib_store, dlib_parts, lfw_images):
    from facestream.engines.faces.embedder import FaceEmbedder

    chips = _dlib_chips(dlib_parts, lfw_images(step=4))  # 25 images; bench/bench_dlib.py checks all 100
    assert len(chips) >= 20
    ref = np.array([np.array(d) for d in dlib_parts["rec"].compute_face_descriptor(chips)])
    ours = FaceEmbedder(store=dlib_store, backend="onnxruntime").embed(np.stack(chips))
    cos = _cosines(ref, ours)
    assert cos.min() >= 0.9999, f"worst cosine {cos.min()}"


def test_fp16_embedder_stays_close(dlib_store, dlib_parts, astronaut):
    from facestream.engines.faces.embedder import FaceEmbedder

    chips = np.stack(_dlib_chips(dlib_parts, [astronaut], upsample=1))
    fp32 = FaceEmbedder(store=dlib_store, backend="onnxruntime").embed(chips)
    fp16 = FaceEmbedder(store=dlib_store, backend="onnxruntime", precision="fp16").embed(chips)
    assert _cosines(fp32, fp16).min() >= 0.999


def _compare_detections(ours, theirs):
    assert len(ours) == len(theirs), (ours, theirs)
    for d, m in zip(ours, theirs, strict=True):
        r = m.rect
        ref = (r.left(), r.top(), r.right() + 1, r.bottom() + 1)
        assert np.abs(np.subtract(d.box, ref)).max() <= 2, (d.box, ref)
        assert d.score == pytest.approx(m.confidence, abs=1e-3)
    scores = [d.score for d in ours]
    assert scores == sorted(scores, reverse=True)


def test_detector_matches_dlib_cnn(dlib_store, dlib_parts, astronaut):
    from facestream.engines.faces.detector import FaceDetector

    det = FaceDetector(store=dlib_store, backend="onnxruntime")
    crop = np.ascontiguousarray(astronaut[:300, 100:450])
    ours = det.detect(crop)
    assert len(ours) == 1
    _compare_detections(ours, dlib_parts["cnn"](crop, 0))


def test_detector_matches_dlib_cnn_on_lfw(dlib_store, dlib_parts, lfw_images):
    from facestream.engines.faces.detector import FaceDetector

    det = FaceDetector(store=dlib_store, backend="onnxruntime")
    images = lfw_images(step=17)
    # a composite with two faces at different scales: several detections, several pyramid levels
    big = cv2.resize(images[1], (330, 330))
    composite = np.zeros((330, 580, 3), np.uint8)
    composite[40:290, :250] = images[0]
    composite[:, 250:] = big
    found = 0
    for img in [*images[2:6], composite]:
        ours = det.detect(img)
        _compare_detections(ours, dlib_parts["cnn"](img, 0))
        found += len(ours)
    assert found >= 4
