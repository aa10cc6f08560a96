"""MTCNN face detector (P-Net -> R-Net -> O-Net) on ONNX Runtime / TensorRT; numpy between the nets, no torch.

The cascade is facenet-pytorch 2.6.0's ``detect_face``: P-Net over an image pyramid (first scale 12 / min_face,
then x ``factor`` down to 12 px), NMS per scale (IoU 0.5) and per image (0.7), box regression, square boxes;
R-Net on 24x24 crops (one batch), NMS 0.7, regression; O-Net on 48x48 crops (one batch), 5 landmarks
(eyes, nose tip, mouth corners), regression, NMS (overlap over the smaller box, 0.7). Crops are resized as
torch's area interpolation does. The pyramid levels: ``pyramid="fast"`` (default) with OpenCV's area resize
(5x cheaper than torch's windows on a 720p frame, but not the same pixels: a borderline P-Net candidate
may differ), ``pyramid="exact"`` as torch does (tests/engines/faces/test_mtcnn_equal.py checks both).

``detect`` returns boxes in dlib's convention (the box dlib's HOG and the labelled photos draw, so the dlib
5-point landmark predictor and chip alignment downstream get what they were trained on): MTCNN's box,
moved and scaled by ``DLIB_BOX``. ``cascade`` returns MTCNN's own boxes.
"""

from __future__ import annotations

import cv2
import numpy as np

from facestream.engines.store import ModelStore
from facestream.errors import FacestreamError

from . import mtcnn_ops as ops
from .detector import Detection, _check_rgb
from .models import load_onnx_model

# dlib box from an MTCNN box (w, h its sides, cx, cy its centre): centre (cx + a w, cy + b h), sides (c w, d h).
# Medians over MTCNN/dlib box pairs fitted on data not reported on (the LFW subset's HOG boxes and dlib's
# training.xml labels): bench/fit_mtcnn_box.py.
DLIB_BOX = (-0.042, 0.051, 1.135, 0.834)


class MtcnnDetector:
    """min_face: smallest face searched for (pixels); thresholds: P-, R-, O-Net face probability; factor:
    pyramid step. ONNX sessions are safe to share between threads: ``thread_safe``."""

    thread_safe = True

    def __init__(
        self,
        store: ModelStore | None = None,
        backend: str = "auto",
        precision: str | None = None,
        min_face: float = 24.0,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        factor: float = 0.709,
        score_threshold: float = 0.0,
        dlib_box: tuple[float, float, float, float] | None = DLIB_BOX,
        pyramid: str = "fast",
        threads: int | None = None,
        **backend_opts,
    ):
        from facestream.engines.backends.select import select_backend
        from facestream.engines.mtcnn_import import MODEL_NAMES, ensure_mtcnn_models

        if min_face < 12:
            raise FacestreamError(f"MTCNN min_face must be >= 12 (P-Net's window), got {min_face}")
        if not 0.1 < factor < 0.95:
            raise FacestreamError(f"MTCNN pyramid factor must lie in (0.1, 0.95), got {factor}")
        if pyramid not in ("fast", "exact"):
            raise FacestreamError(f"MTCNN pyramid must be fast or exact, got {pyramid!r}")
        if len(thresholds) != 3 or not all(0.0 <= t < 1.0 for t in thresholds):
            raise FacestreamError(f"MTCNN thresholds must be three probabilities, got {thresholds}")
        self.store = ensure_mtcnn_models(store)
        if threads is not None and "intra_op_threads" not in backend_opts and select_backend(backend)[0] == "onnxruntime":
            backend_opts = {**backend_opts, "intra_op_threads": int(threads)}
        self.nets = {net: load_onnx_model(name, self.store, backend, precision, **backend_opts)
                     for net, name in MODEL_NAMES.items()}
        self.min_face = float(min_face)
        self.smallest_face = self.min_face  # what RegionDetector shrinks followed faces to
        self.thresholds = tuple(float(t) for t in thresholds)
        self.factor = float(factor)
        self.score_threshold = float(score_threshold)
        self.dlib_box = dlib_box
        self.pyramid = pyramid
        self.backend_name = self.nets["pnet"].backend_name

    # --- stages --------------------------------------------------------------------------------------

    def _pnet(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n, h, w = images.shape[:3]
        boxes, index = [], []
        sums = [ops.row_sums(img) for img in images] if self.pyramid == "exact" else []
        for scale in ops.pyramid_scales(h, w, self.min_face, self.factor):
            size = (int(w * scale + 1), int(h * scale + 1))
            if sums:
                level = np.stack([ops.resize_area_exact(s, size[1], size[0]) for s in sums])
            else:
                level = np.stack([cv2.resize(img, size, interpolation=cv2.INTER_AREA) for img in images])
            level = np.clip(level, 0.0, 255.0, dtype=np.float32)  # float rounding may step past 255
            out = self.nets["pnet"].infer(np.ascontiguousarray(level.transpose(0, 3, 1, 2)))
            for b in range(n):
                cand = ops.pnet_boxes(out["reg"][b], out["prob"][b, 1], scale, self.thresholds[0])
                cand = cand[ops.nms(cand, cand[:, 4], 0.5)]
                boxes.append(cand)
                index.append(np.full(len(cand), b))
        if not boxes:  # image shorter than min_face: no pyramid level
            return np.zeros((0, 5), np.float32), np.zeros(0, np.int64)
        boxes, index = np.concatenate(boxes), np.concatenate(index)
        keep = ops.nms_per_image(boxes, boxes[:, 4], index, 0.7)
        boxes, index = boxes[keep], index[keep]
        w_, h_ = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        reg = boxes[:, 5:9]
        moved = np.stack([boxes[:, 0] + reg[:, 0] * w_, boxes[:, 1] + reg[:, 1] * h_,
                          boxes[:, 2] + reg[:, 2] * w_, boxes[:, 3] + reg[:, 3] * h_, boxes[:, 4]], axis=1)
        return ops.rerec(moved), index

    def _crops(self, images: np.ndarray, boxes: np.ndarray, index: np.ndarray, side: int):
        h, w = images.shape[1:3]
        win = ops.crop_windows(boxes, w, h)
        ok = (win[:, 2] > win[:, 0]) & (win[:, 3] > win[:, 1])
        win, boxes, index = win[ok], boxes[ok], index[ok]
        parts = [ops.crop_batch(images[b], win[index == b], side, self.pyramid == "exact") for b in np.unique(index)]
        order = np.concatenate([np.flatnonzero(index == b) for b in np.unique(index)])
        return np.concatenate(parts), boxes[order], index[order]

    def _refine(self, net: str, side: int, threshold: float, images, boxes, index):
        """R-Net / O-Net: crops at ``side``, the net, candidates above ``threshold`` with their score as the
        boxes' 5th column; returns (the net's outputs for those, boxes, index)."""
        data, boxes, index = self._crops(images, boxes, index, side)
        out = self.nets[net].infer(data)
        score = out["prob"][:, 1]
        ok = score > threshold
        boxes = np.concatenate([boxes[ok, :4], score[ok, None]], axis=1)
        return {k: v[ok] for k, v in out.items()}, boxes, index[ok]

    def _rnet(self, images, boxes, index):
        out, boxes, index = self._refine("rnet", 24, self.thresholds[1], images, boxes, index)
        keep = ops.nms_per_image(boxes, boxes[:, 4], index, 0.7)
        return ops.rerec(ops.bbreg(boxes[keep], out["reg"][keep])), index[keep]

    def _onet(self, images, boxes, index):
        out, boxes, index = self._refine("onet", 48, self.thresholds[2], images, boxes, index)
        lm, reg = out["landmarks"], out["reg"]
        wi = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        hi = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        points = np.stack([wi * lm[:, :5] + boxes[:, :1] - 1, hi * lm[:, 5:] + boxes[:, 1:2] - 1], axis=2)
        boxes = ops.bbreg(boxes, reg)
        keep = ops.nms_per_image(boxes, boxes[:, 4], index, 0.7, "min")
        return boxes[keep], points[keep], index[keep]

    def cascade(self, images: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per image of an (n, H, W, 3) uint8 RGB batch: MTCNN's boxes (k, 5: x1 y1 x2 y2 prob) and landmarks
        (k, 5, 2), as facenet-pytorch's ``MTCNN.detect`` returns them."""
        n = len(images)
        if self.pyramid == "exact":
            images = images.astype(np.float32)  # resized as floats, as facenet-pytorch does
        empty = [(np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32)) for _ in range(n)]
        boxes, index = self._pnet(images)
        if len(boxes):
            boxes, index = self._rnet(images, boxes, index)
        if not len(boxes):
            return empty
        boxes, points, index = self._onet(images, boxes, index)
        return [(boxes[index == b], points[index == b]) for b in range(n)] if len(boxes) else empty

    # --- API -----------------------------------------------------------------------------------------

    def _detections(self, boxes: np.ndarray, points: np.ndarray, width: int, height: int,
                    score_threshold: float) -> list[Detection]:
        out = []
        for (x1, y1, x2, y2, p), lm in zip(boxes, points, strict=True):
            if p < score_threshold:
                continue
            if self.dlib_box is not None:
                a, b, c, d = self.dlib_box
                w, h = x2 - x1, y2 - y1
                cx, cy = (x1 + x2) / 2 + a * w, (y1 + y2) / 2 + b * h
                x1, x2, y1, y2 = cx - c * w / 2, cx + c * w / 2, cy - d * h / 2, cy + d * h / 2
            box = (max(0.0, float(x1)), max(0.0, float(y1)), min(float(width), float(x2)), min(float(height), float(y2)))
            if box[2] - box[0] >= 1 and box[3] - box[1] >= 1:
                out.append(Detection(box, float(p), lm.astype(np.float32)))
        return sorted(out, key=lambda d: -d.score)

    def detect(self, rgb: np.ndarray, score_threshold: float | None = None) -> list[Detection]:
        """Faces in one RGB uint8 image, best score first, with MTCNN's 5 landmarks."""
        _check_rgb(rgb)
        thr = self.score_threshold if score_threshold is None else float(score_threshold)
        if min(rgb.shape[:2]) < 12:
            return []
        boxes, points = self.cascade(rgb[None])[0]
        return self._detections(boxes, points, rgb.shape[1], rgb.shape[0], thr)

    def detect_batch(self, images: list[np.ndarray]) -> list[list[Detection]]:
        """Faces in several images; images of one size share each network call."""
        results: list[list[Detection]] = [[] for _ in images]
        groups: dict[tuple[int, int], list[int]] = {}
        for i, img in enumerate(images):
            _check_rgb(img)
            if min(img.shape[:2]) >= 12:
                groups.setdefault(img.shape[:2], []).append(i)
        for (h, w), idxs in groups.items():
            for i, (boxes, points) in zip(idxs, self.cascade(np.stack([images[i] for i in idxs])), strict=True):
                results[i] = self._detections(boxes, points, w, h, self.score_threshold)
        return results
