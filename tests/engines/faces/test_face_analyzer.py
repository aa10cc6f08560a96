"""FaceAnalyzer end to end on a real face, and models imported into an empty store on first use."""

from __future__ import annotations

import logging

import dlib
import numpy as np
import pytest

from facestream.engines.dlib_import import DETECTOR_NAME, EMBEDDER_NAME, model_file
from facestream.engines.faces.analyzer import FaceAnalyzer, ensure_dlib_models
from facestream.engines.store import ModelStore
from facestream.errors import FacestreamError


@pytest.mark.parametrize("kind", ["hog", "cnn"])
def test_analyze_astronaut(kind, dlib_store, astronaut):
    analyzer = FaceAnalyzer(detector=kind, store=dlib_store, backend="onnxruntime")
    faces = analyzer.analyze(astronaut)
    assert len(faces) >= 1
    face = faces[0]
    assert face.landmarks.shape == (5, 2) and face.chip.shape == (150, 150, 3)
    assert face.embedding is not None and face.embedding.shape == (128,)
    rec = dlib.face_recognition_model_v1(str(model_file("dlib_face_recognition_resnet_model_v1.dat")))
    ref = np.array(rec.compute_face_descriptor(face.chip))
    assert np.linalg.norm(ref - face.embedding) < 1e-3
    assert face.quality.reasons == []
    assert analyzer.analyze(astronaut, embed=False)[0].embedding is None


def test_same_person_is_closer_than_a_stranger(dlib_store, lfw_images):
    analyzer = FaceAnalyzer(detector="hog", store=dlib_store, backend="onnxruntime")
    images = lfw_images()  # folders of 10 images per person, sorted by name
    a1, a2, b = (analyzer.analyze(images[i])[0].embedding for i in (0, 1, 10))
    assert np.linalg.norm(a1 - a2) < 0.6 < np.linalg.norm(a1 - b)


def test_unknown_detector_is_a_user_error(dlib_store):
    with pytest.raises(FacestreamError, match="hog or cnn"):
        FaceAnalyzer(detector="yolo", store=dlib_store)


def test_ensure_dlib_models_imports_once(tmp_path, caplog):
    store = ModelStore(tmp_path / "models")
    with caplog.at_level(logging.INFO, logger="facestream.engines.faces.models"):
        ensure_dlib_models(store)
    assert store.names() == sorted([DETECTOR_NAME, EMBEDDER_NAME])
    assert any("converting" in r.message for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="facestream.engines.faces.models"):
        ensure_dlib_models(store)
    assert not caplog.records
