"""The MTCNN detector as facestream uses it: the ``{type: mtcnn}`` spec, dlib-convention boxes the 5-point
predictor and the embedder accept, the region planner driving it, and precision on dlib's labelled photos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from facestream.engines.faces.detector_specs import MtcnnSpec, parse_detector
from facestream.engines.faces.labelled import read_imglab, score_labelled
from facestream.engines.faces.regions import iou
from facestream.errors import FacestreamError

REPO = Path(__file__).resolve().parents[3]
TESTING = REPO.parent / "shared" / "data" / "dlib_faces_detection" / "faces" / "testing.xml"


@pytest.fixture(scope="module")
def mtcnn(mtcnn_store):
    from facestream.engines.faces.mtcnn import MtcnnDetector

    return MtcnnDetector(store=mtcnn_store, backend="onnxruntime")


def test_spec_parses_and_rejects_bad_values():
    spec = parse_detector({"type": "mtcnn"})
    assert isinstance(spec, MtcnnSpec) and spec.min_face == 24 and spec.regions
    assert spec.options()["thresholds"] == (0.6, 0.7, 0.7)
    with pytest.raises(FacestreamError, match="detector.min_face"):
        parse_detector({"type": "mtcnn", "min_face": 8})
    with pytest.raises(FacestreamError, match="detector.thresholds"):
        parse_detector({"type": "mtcnn", "thresholds": [0.5, 0.5]})


def test_boxes_are_dlibs_and_the_chip_embeds_like_hogs(mtcnn_store, dlib_store, astronaut):
    from facestream.engines.faces.analyzer import FaceAnalyzer

    spec = MtcnnSpec()
    ours = FaceAnalyzer(spec, store=mtcnn_store, backend="onnxruntime").analyze(astronaut, embed=False)
    hog = FaceAnalyzer("hog", store=dlib_store, backend="onnxruntime", upsample=0)
    ref = hog.analyze(astronaut)
    assert len(ours) == 1 and len(ref) == 1
    assert iou(ours[0].box, ref[0].box) > 0.75  # dlib's box convention, not MTCNN's taller one
    assert np.abs(ours[0].landmarks - ref[0].landmarks).max() < 3.0  # the 5-point predictor agrees
    vec = hog.embedder.embed(ours[0].chip[None])[0]
    assert np.linalg.norm(vec - ref[0].embedding) < 0.15  # same person, same alignment (same-person < 0.6)


def test_landmarks_are_mtcnns_five_points(mtcnn, astronaut):
    (det,) = mtcnn.detect(astronaut)
    eye_l, eye_r, nose, mouth_l, mouth_r = det.landmarks
    x1, y1, x2, y2 = det.box
    assert x1 < eye_l[0] < eye_r[0] < x2 and x1 < mouth_l[0] < mouth_r[0] < x2
    assert eye_l[1] < nose[1] < mouth_l[1] and y1 < eye_l[1] and mouth_r[1] < y2 + 5


def test_batch_equals_one_by_one(mtcnn, astronaut):
    flipped = np.ascontiguousarray(astronaut[:, ::-1])
    batch = mtcnn.detect_batch([astronaut, flipped, astronaut[:8]])
    assert batch[2] == []
    assert mtcnn.detect(np.ascontiguousarray(astronaut[:20])) == []  # shorter than min_face: no pyramid level
    for img, got in zip((astronaut, flipped), batch[:2], strict=True):
        single = mtcnn.detect(img)
        assert len(got) == len(single) == 1 and iou(got[0].box, single[0].box) > 0.999


def test_the_planner_drives_mtcnn(mtcnn, astronaut):
    from facestream.engines.faces.region_detector import RegionDetector

    rng = np.random.default_rng(1)
    scene = cv2.resize(rng.integers(90, 140, size=(90, 160, 3), dtype=np.uint8), (1280, 720),
                       interpolation=cv2.INTER_CUBIC)
    face = cv2.resize(astronaut[20:240, 140:320], (90, 110), interpolation=cv2.INTER_AREA)
    det = RegionDetector(mtcnn, threads=2)
    assert det.cfg.track_window == 24.0
    hits = 0
    for k in range(12):
        frame = scene.copy()
        x, y = 200 + 15 * k, 300 + 4 * k
        frame[y: y + 110, x: x + 90] = face
        # the face as MTCNN draws it on the whole frame (the pasted patch holds hair and background too)
        ref = max(mtcnn.detect(frame), key=lambda d: iou(d.box, (x, y, x + 90, y + 110))).box
        hits += any(iou(d.box, ref) > 0.4 for d in det.detect("s", frame))
    assert hits == 12 and det.pixels["tracks"] > 0  # found by the full pass, then followed
    det.close()


@pytest.mark.skipif(not TESTING.exists(), reason=f"labelled photos not found at {TESTING}")
def test_precision_and_recall_on_labelled_photos(mtcnn):
    tp = fp = n = 0
    for path, boxes in read_imglab(TESTING):
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        t, f, k = score_labelled([d.box for d in mtcnn.detect(rgb)], boxes)
        tp, fp, n = tp + t, fp + f, n + k
    precision, recall = tp / max(1, tp + fp), tp / max(1, n)
    print(f"precision {precision:.3f} recall {recall:.3f} ({tp}/{n}, {fp} fp)")
    assert precision >= 0.95, f"precision {precision:.3f} ({tp} tp, {fp} fp)"
    assert recall >= 0.8, f"recall {recall:.3f} of {n}"


def test_inference_path_does_not_import_torch(mtcnn_store):
    import subprocess
    import sys

    code = ("import sys, numpy as np; from facestream.engines.store import ModelStore; "
            "from facestream.engines.faces.analyzer import FaceAnalyzer; "
            f"a = FaceAnalyzer('mtcnn', store=ModelStore({str(mtcnn_store.root)!r}), backend='onnxruntime'); "
            "a.analyze(np.zeros((120, 160, 3), np.uint8), embed=False); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
