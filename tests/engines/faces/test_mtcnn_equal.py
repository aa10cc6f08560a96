"""The ONNX MTCNN against facenet-pytorch's own (torch), on real photos: each net's outputs within 1e-4 on the
same inputs, and the whole cascade's boxes (IoU > 0.9), scores and landmarks.

Skips when torch or facenet_pytorch is missing (tests/run.sh installs facenet-pytorch 2.6.0 with --no-deps).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from mtcnn_reference import load_facenet

from facestream.engines.faces.regions import iou

REPO = Path(__file__).resolve().parents[3]
PHOTOS = [REPO.parent / "shared" / "data" / "facenet_pytorch_assets" / "data" / "multiface.jpg",
          *sorted((REPO.parent / "shared" / "data" / "dlib_faces_detection" / "faces").glob("*.jpg"))]
facenet, WHY = load_facenet()
pytestmark = pytest.mark.skipif(facenet is None, reason=WHY)


@pytest.fixture(scope="module")
def reference():
    import torch

    torch.set_num_threads(2)
    return facenet.MTCNN(keep_all=True, device="cpu")


@pytest.fixture(scope="module")
def photos(astronaut, lfw_images):
    found = [(p.name, cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)) for p in PHOTOS if p.is_file()]
    lfw = [(f"lfw{i}", img) for i, img in enumerate(lfw_images(limit=5, step=20))]
    return [("astronaut", astronaut), *found, *lfw]


def _detector(store, pyramid):
    from facestream.engines.faces.mtcnn import MtcnnDetector

    # min_face 20: facenet-pytorch's default
    return MtcnnDetector(store=store, backend="onnxruntime", dlib_box=None, pyramid=pyramid, min_face=20)


def _sessions(store):
    from facestream.engines.runtime import load_model

    return {net: load_model(f"mtcnn-{net}", backend="onnxruntime", store=store) for net in ("pnet", "rnet", "onet")}


def test_each_net_equals_facenet_on_real_inputs(mtcnn_store, reference, photos):
    import torch

    nets = _sessions(mtcnn_store)
    rng = np.random.default_rng(0)
    for _, img in photos[:4]:
        h, w = img.shape[:2]
        x = img.astype(np.float32).transpose(2, 0, 1)[None]
        level = cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA).astype(np.float32)
        crops = {}
        for side in (24, 48):
            boxes = [(int(rng.integers(0, w - 40)), int(rng.integers(0, h - 40))) for _ in range(16)]
            crops[side] = np.stack([cv2.resize(img[y: y + 40 + k, x0: x0 + 40 + k], (side, side)) for k, (x0, y)
                                    in enumerate(boxes)]).astype(np.float32).transpose(0, 3, 1, 2)
        feeds = {"pnet": [x, np.ascontiguousarray(level.transpose(2, 0, 1)[None])], "rnet": [crops[24]],
                 "onet": [crops[48]]}
        for net, inputs in feeds.items():
            torch_net = getattr(reference, net)
            for data in inputs:
                ours = list(nets[net].infer(data).values())
                with torch.no_grad():
                    ref = torch_net((torch.from_numpy(data) - 127.5) * 0.0078125)
                assert len(ours) == len(ref)
                for a, b in zip(ours, ref, strict=True):
                    assert a.shape == tuple(b.shape)
                    assert np.abs(a - b.numpy()).max() < 1e-4, f"{net} differs by {np.abs(a - b.numpy()).max()}"


def _compare(ref_boxes, ref_points, ours, ours_points):
    """(reference boxes matched with IoU > 0.9, their count, worst landmark distance in px)"""
    matched, worst = 0, 0.0
    for rb, rp in zip(ref_boxes, ref_points, strict=True):
        best = max(range(len(ours)), key=lambda j: iou(tuple(rb[:4]), tuple(ours[j][:4])), default=None)
        if best is not None and iou(tuple(rb[:4]), tuple(ours[best][:4])) > 0.9:
            matched += 1
            worst = max(worst, float(np.abs(ours_points[best] - rp).max()))
    return matched, len(ref_boxes), worst


@pytest.fixture(scope="module")
def expected(reference, photos):
    """facenet-pytorch's (boxes, probabilities, landmarks) per photo, computed once."""
    out = []
    for _, img in photos:
        boxes, probs, points = reference.detect(img, landmarks=True)
        out.append((np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))) if boxes is None else (boxes, probs, points))
    return out


def test_cascade_equals_facenet_on_photos(mtcnn_store, photos, expected):
    det = _detector(mtcnn_store, "exact")
    total = 0
    for (name, img), (boxes, probs, points) in zip(photos, expected, strict=True):
        ours, ours_points = det.cascade(img[None])[0]
        assert len(ours) == len(boxes), f"{name}: {len(ours)} faces, facenet-pytorch {len(boxes)}"
        matched, n, worst = _compare(boxes, points, ours, ours_points)
        assert matched == n, f"{name}: {matched} of {n} boxes with IoU > 0.9"
        assert worst < 1.0, f"{name}: landmarks differ by {worst:.2f} px"
        if n:
            assert np.abs(np.sort(ours[:, 4]) - np.sort(probs)).max() < 1e-3
        total += n
    assert total >= 40  # the photos hold faces: the comparison is not vacuous


def test_fast_pyramid_stays_close(mtcnn_store, photos, expected):
    """The default pyramid (OpenCV's area resize) finds nearly the same faces."""
    det = _detector(mtcnn_store, "fast")
    matched = loose = n = 0
    for (_, img), (boxes, _, points) in zip(photos, expected, strict=True):
        ours, ours_points = det.cascade(img[None])[0]
        m, k, _ = _compare(boxes, points, ours, ours_points)
        matched, n = matched + m, n + k
        loose += sum(any(iou(tuple(b[:4]), tuple(o[:4])) > 0.5 for o in ours) for b in boxes)
    assert matched >= 0.85 * n, f"{matched} of {n} with IoU > 0.9"
    assert loose >= 0.97 * n, f"{loose} of {n} with IoU > 0.5"
