"""Face detectors with one interface: ``detect(rgb) -> list[Detection]``.

:class:`FaceDetector` runs dlib's MMOD CNN (converted to ONNX) and does the post-processing here, as dlib's
``loss_mmod`` does: tiled image pyramid, score threshold, box decoding, NMS on rounded boxes where a box is
dropped when intersection / (area of the box enclosing both) exceeds 0.338. With the defaults its boxes equal
``dlib.cnn_face_detection_model_v1`` (no upsampling). :class:`HogDetector` wraps dlib's HOG detector.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from facestream.engines.store import ModelStore
from facestream.errors import FacestreamError

from .models import ensure_dlib_models, load_onnx_model
from .pyramid import build_tiled_pyramid, tiled_to_image

WINDOW = 80  # the MMOD detector window: a face this big (pixels) is found on the pyramid's first level
PYRAMIDS = ("auto", "tiled", "fixed")


@dataclass
class Detection:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels (x2 - x1 = width)
    score: float
    landmarks: np.ndarray | None = None  # the detector's own points (MTCNN: 5 x (x, y)), when it gives any


def _check_rgb(rgb: np.ndarray) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        shape = getattr(rgb, "shape", None)
        raise FacestreamError(f"detector input must be an RGB uint8 array (H,W,3), got {shape}")


def _round(v: float) -> int:
    return int(np.floor(v + 0.5))


def nms_dlib(boxes: list[tuple[int, int, int, int]], scores: list[float], iou: float, covered: float = 1.0):
    """Indices kept by dlib's ``test_box_overlap`` NMS; boxes are inclusive (l, t, r, b), scores sorted."""

    def area(x1, y1, x2, y2):
        return 0 if x1 > x2 or y1 > y2 else (x2 - x1 + 1) * (y2 - y1 + 1)

    kept: list[int] = []
    for i, a in enumerate(boxes):
        drop = False
        for j in kept:
            b = boxes[j]
            inner = area(max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))
            if inner == 0:
                continue
            outer = area(min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
            if inner / outer > iou or inner / area(*a) > covered or inner / area(*b) > covered:
                drop = True
                break
        if not drop:
            kept.append(i)
    return kept


class FaceDetector:
    """dlib's MMOD CNN face detector on ONNX Runtime / TensorRT.

    pyramid: ``auto``/``tiled`` = dlib's tiled pyramid (all levels, or ``max_levels``); ``fixed`` = one scale.
    min_face: smallest face wanted, in pixels. The image is scaled by 80 / min_face before the pyramid, so
    80 (default) equals dlib, 40 upsamples 2x (dlib's ``upsample=1``), 120 works on a 2/3-size image (faster).
    """

    def __init__(
        self,
        store: ModelStore | None = None,
        backend: str = "auto",
        pyramid: str = "auto",
        min_face: float = WINDOW,
        score_threshold: float = 0.0,
        nms_iou: float | None = None,
        max_levels: int | None = None,
        precision: str | None = None,
        **backend_opts,
    ):
        from facestream.engines.dlib_import import DETECTOR_NAME

        if pyramid not in PYRAMIDS:
            raise FacestreamError(f"unknown pyramid policy {pyramid!r} (choose from {', '.join(PYRAMIDS)})")
        if min_face <= 0:
            raise FacestreamError(f"min_face must be positive, got {min_face}")
        self.store = ensure_dlib_models(store)
        self.model = load_onnx_model(DETECTOR_NAME, self.store, backend, precision, **backend_opts)
        extra = self.model.manifest.extra
        self.mean_rgb = tuple(extra["mean_rgb"])
        self.stride, self.offset = int(extra["stride"]), int(extra["offset"])
        self.window = tuple(extra["window"])
        self.padding = int(extra["pyramid_padding"])
        self.outer_padding = int(extra["pyramid_outer_padding"])
        self.nms_iou = float(extra["nms_iou_threshold"]) if nms_iou is None else float(nms_iou)
        self.nms_covered = float(extra["nms_percent_covered_threshold"])
        self.pyramid = "tiled" if pyramid == "auto" else pyramid
        self.max_levels = 1 if self.pyramid == "fixed" else max_levels
        self.min_face = float(min_face)
        self.score_threshold = float(score_threshold)
        self.backend_name = self.model.backend_name

    # --- steps ---------------------------------------------------------------------------------------

    def _scaled(self, rgb: np.ndarray) -> tuple[np.ndarray, float]:
        scale = self.window[1] / self.min_face
        if abs(scale - 1.0) < 1e-9:
            return rgb, 1.0
        h, w = rgb.shape[:2]
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        return cv2.resize(rgb, (nw, nh), interpolation=interp), nw / w

    def _tensor(self, rgb: np.ndarray):
        tiled, rects = build_tiled_pyramid(
            rgb, self.mean_rgb, self.padding, self.outer_padding, self.max_levels
        )
        return tiled, rects

    def _decode(self, scores: np.ndarray, rects, scale: float) -> list[Detection]:
        rows, cols = np.nonzero(scores > self.score_threshold)
        if rows.size == 0:
            return []
        vals = scores[rows, cols]
        order = np.argsort(-vals, kind="stable")
        half_w, half_h = (self.window[0] - 1) / 2.0, (self.window[1] - 1) / 2.0
        boxes, kept_scores = [], []
        for k in order:
            x = self.stride * cols[k] + self.offset
            y = self.stride * rows[k] + self.offset
            mapped = tiled_to_image(rects, (x - half_w, y - half_h, x + half_w, y + half_h))
            boxes.append(tuple(_round(v) for v in mapped))
            kept_scores.append(float(vals[k]))
        out = []
        for i in nms_dlib(boxes, kept_scores, self.nms_iou, self.nms_covered):
            x1, y1, x2, y2 = boxes[i]  # inclusive, as dlib's rectangle
            box = (x1 / scale, y1 / scale, (x2 + 1) / scale, (y2 + 1) / scale)
            out.append(Detection(box, kept_scores[i]))
        return out

    # --- API -----------------------------------------------------------------------------------------

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Faces in one RGB uint8 image, best score first."""
        return self.detect_batch([rgb])[0]

    def detect_batch(self, images: list[np.ndarray]) -> list[list[Detection]]:
        """Faces in several images; images of one size share one network call."""
        results: list[list[Detection] | None] = [None] * len(images)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, img in enumerate(images):
            _check_rgb(img)
            groups.setdefault(img.shape[:2], []).append(i)
        for idxs in groups.values():
            prepared = [self._scaled(images[i]) for i in idxs]
            tensors = [self._tensor(img) for img, _ in prepared]
            batch = np.stack([t for t, _ in tensors])
            scores = self.model.infer(batch)["scores"]
            for j, i in enumerate(idxs):
                results[i] = self._decode(scores[j, 0], tensors[j][1], prepared[j][1])
        return results  # type: ignore[return-value]


class HogDetector:
    """dlib's HOG + linear SVM frontal face detector (CPU). ``upsample`` doubles the image that many times."""

    backend_name = "dlib-hog"
    takes_grey = True  # detect() also takes a grey frame (RegionDetector's luma)

    def __init__(self, upsample: int = 0, score_threshold: float = 0.0):
        import dlib

        if upsample < 0:
            raise FacestreamError(f"upsample must be >= 0, got {upsample}")
        self._detector = dlib.get_frontal_face_detector()
        self.upsample = int(upsample)
        self.score_threshold = float(score_threshold)

    def detect(self, rgb: np.ndarray, score_threshold: float | None = None) -> list[Detection]:
        """Faces, best score first; ``score_threshold`` overrides the detector's for this call. ``rgb`` may
        also be a grey (H, W) uint8 image: one gradient per pixel instead of the strongest of three."""
        if not (isinstance(rgb, np.ndarray) and rgb.ndim == 2 and rgb.dtype == np.uint8):
            _check_rgb(rgb)
        thr = self.score_threshold if score_threshold is None else float(score_threshold)
        rects, scores, _ = self._detector.run(rgb, self.upsample, thr)
        dets = [
            Detection((r.left(), r.top(), r.right() + 1, r.bottom() + 1), float(s))
            for r, s in zip(rects, scores, strict=True)
        ]
        return sorted(dets, key=lambda d: -d.score)

    def detect_batch(self, images: list[np.ndarray]) -> list[list[Detection]]:
        return [self.detect(img) for img in images]
