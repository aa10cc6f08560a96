"""The numpy steps between MTCNN's networks, as facenet-pytorch 2.6.0 does them (``models/utils/detect_face.py``).

Boxes are float arrays ``(n, >=4)`` of x1, y1, x2, y2 in image pixels. facenet-pytorch mixes two NMS flavours:
torchvision's (IoU, areas without +1) after P-Net and R-Net, and its own numpy one (areas with +1, overlap
over the smaller area: ``Min``) after O-Net; both are here.
"""

from __future__ import annotations

import cv2
import numpy as np

PNET_STRIDE, PNET_CELL = 2, 12


def pyramid_scales(height: int, width: int, min_face: float, factor: float) -> list[float]:
    """facenet-pytorch's scales: 12 / min_face, times ``factor`` while the short side stays >= 12 px."""
    m = 12.0 / min_face
    minl = min(height, width) * m
    scales = []
    scale = m
    while minl >= 12:
        scales.append(scale)
        scale *= factor
        minl *= factor
    return scales


def pnet_boxes(reg: np.ndarray, prob: np.ndarray, scale: float, threshold: float) -> np.ndarray:
    """Candidate boxes of one P-Net output map: (n, 9) = x1, y1, x2, y2, score, 4 regression offsets.
    ``reg`` (4, h, w), ``prob`` (h, w) the face probability."""
    rows, cols = np.nonzero(prob >= threshold)
    if rows.size == 0:
        return np.zeros((0, 9), np.float32)
    bb = np.stack([cols, rows], axis=1).astype(np.float32)
    q1 = np.floor((PNET_STRIDE * bb + 1) / np.float32(scale))
    q2 = np.floor((PNET_STRIDE * bb + PNET_CELL) / np.float32(scale))
    return np.concatenate([q1, q2, prob[rows, cols, None], reg[:, rows, cols].T], axis=1).astype(np.float32)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, method: str = "union") -> np.ndarray:
    """Indices kept, best score first. ``union``: torchvision's (IoU > threshold suppresses, areas without +1);
    ``min``: facenet-pytorch's numpy one (intersection over the smaller area, areas with +1)."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    x1, y1, x2, y2 = (boxes[:, i].astype(np.float64) for i in range(4))
    one = 1.0 if method == "min" else 0.0
    areas = (x2 - x1 + one) * (y2 - y1 + one)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        iw = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + one)
        ih = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + one)
        inter = iw * ih
        if method == "min":
            over = inter / np.minimum(areas[i], areas[rest])
        else:
            over = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-12)
        order = rest[over <= threshold]
    return np.asarray(keep, np.int64)


def nms_per_image(boxes: np.ndarray, scores: np.ndarray, image: np.ndarray, threshold: float,
                  method: str = "union") -> np.ndarray:
    """``nms`` within each image index; indices into the inputs, image by image."""
    keep = [np.flatnonzero(image == b)[nms(boxes[image == b], scores[image == b], threshold, method)]
            for b in np.unique(image)]
    return np.concatenate(keep) if keep else np.zeros(0, np.int64)


def rerec(boxes: np.ndarray) -> np.ndarray:
    """Boxes made square on their longer side, same centre."""
    out = boxes.copy()
    w, h = out[:, 2] - out[:, 0], out[:, 3] - out[:, 1]
    side = np.maximum(w, h)
    out[:, 0] += w * 0.5 - side * 0.5
    out[:, 1] += h * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def bbreg(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """R-Net/O-Net box regression (width and height with +1)."""
    out = boxes.copy()
    w = out[:, 2] - out[:, 0] + 1
    h = out[:, 3] - out[:, 1] + 1
    out[:, 0] += reg[:, 0] * w
    out[:, 1] += reg[:, 1] * h
    out[:, 2] += reg[:, 2] * w
    out[:, 3] += reg[:, 3] * h
    return out


def crop_windows(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """facenet-pytorch's ``pad``: integer (x1, y1, x2, y2) slices into the image, clamped to it (not padded)."""
    b = np.trunc(boxes[:, :4]).astype(np.int64)
    x1 = np.maximum(b[:, 0], 1) - 1
    y1 = np.maximum(b[:, 1], 1) - 1
    return np.stack([x1, y1, np.minimum(b[:, 2], width), np.minimum(b[:, 3], height)], axis=1)


def _bounds(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """torch adaptive pooling windows: output i averages input [floor(i n_in / n_out), ceil((i+1) n_in / n_out))."""
    i = np.arange(n_out)
    return (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)


def row_sums(image: np.ndarray) -> np.ndarray:
    """(H+1, W, C) float64 running sums down the rows, a zero row first: shared by every ``resize_area_exact``."""
    out = np.zeros((image.shape[0] + 1, *image.shape[1:]), np.float64)
    np.cumsum(image, axis=0, out=out[1:])
    return out


def resize_area_exact(sums: np.ndarray, height: int, width: int) -> np.ndarray:
    """torch's ``interpolate(mode='area')`` of the image whose ``row_sums`` are given, to (height, width)."""
    lo, hi = _bounds(sums.shape[0] - 1, height)
    rows = (sums[hi] - sums[lo]) / (hi - lo)[:, None, None]
    cols = np.zeros((height, rows.shape[1] + 1, rows.shape[2]), np.float64)
    np.cumsum(rows, axis=1, out=cols[:, 1:])
    lo, hi = _bounds(rows.shape[1], width)
    return ((cols[:, hi] - cols[:, lo]) / (hi - lo)[None, :, None]).astype(np.float32)


def _area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of torch's ``interpolate(mode='area')`` (adaptive average pooling) on one axis."""
    m = np.zeros((n_out, n_in), np.float32)
    for i in range(n_out):
        lo, hi = (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)
        m[i, lo:hi] = 1.0 / (hi - lo)
    return m


_MATRICES: dict[tuple[int, int], np.ndarray] = {}


def area_matrix(n_in: int, n_out: int) -> np.ndarray:
    key = (n_in, n_out)
    m = _MATRICES.get(key)
    if m is None:
        m = _MATRICES[key] = _area_matrix(n_in, n_out)
        if len(_MATRICES) > 4096:
            _MATRICES.clear()
    return m


def crop_batch(image: np.ndarray, windows: np.ndarray, side: int, exact: bool = True) -> np.ndarray:
    """(n, 3, side, side) float32 crops of an RGB image, each resized as torch's area interpolation does; with
    ``exact`` false by OpenCV (area when shrinking, else linear): the exact windows cost side x pixels per
    crop, 0.3 ms each, and a 720p street frame in the planner has ~370 crops."""
    out = np.empty((len(windows), 3, side, side), np.float32)
    for k, (x1, y1, x2, y2) in enumerate(windows):
        crop = image[y1:y2, x1:x2]
        if not exact:
            shrink = (y2 - y1) >= side and (x2 - x1) >= side
            out[k] = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
                                ).transpose(2, 0, 1)
            continue
        rows = np.tensordot(area_matrix(y2 - y1, side), crop, axes=(1, 0))  # (side, w, 3)
        out[k] = np.tensordot(rows, area_matrix(x2 - x1, side), axes=(1, 1)).transpose(1, 0, 2)  # (3, side, side)
    return np.clip(out, 0.0, 255.0, out=out)
