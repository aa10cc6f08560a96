"""Face alignment: dlib's ``get_face_chip`` reproduced in numpy, and the classic 128x128 grey crop.

``face_chip`` follows ``dlib/image_transforms/interpolation.h``: a least-squares similarity transform
(Umeyama) from the 5-point template to the landmarks gives an angle and a scale; the chip rectangle is
``centered_drect(T(size/2, size/2), size*scale, size*scale)``; each chip pixel is sampled bilinearly (pixels
whose 2x2 neighbourhood leaves the image are black; values truncated to uint8, as dlib's assign_pixel does).
When the chip is more than 2x smaller than its source region dlib first halves the image (more than once
if needed) with ``pyramid_down<2>``; that is reproduced too.
"""

from __future__ import annotations

import math

import numpy as np

from facestream.engines.preprocess import CROP_SIZE, face_crop_128

from .vectors import CHIP_SIZE

# dlib's 5-point chip template (get_face_chip_details), in units of the chip's face square.
TEMPLATE_5 = np.array(
    [
        (0.8595674595992, 0.2134981538014),
        (0.6460604764104, 0.2289674387677),
        (0.1205750620789, 0.2137274526848),
        (0.3340850613712, 0.2290642403242),
        (0.4901123135679, 0.6277975316475),
    ],
    np.float64,
)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """dlib's find_similarity_transform (Umeyama): (2x2 matrix, translation) mapping src points to dst."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mean_src, mean_dst = src.mean(0), dst.mean(0)
    sigma_src = np.mean(np.sum((src - mean_src) ** 2, axis=1))
    cov = (dst - mean_dst).T @ (src - mean_src) / len(src)
    u, d, vt = np.linalg.svd(cov)
    s = np.eye(2)
    if np.linalg.det(cov) < 0 or (np.linalg.det(cov) == 0 and np.linalg.det(u) * np.linalg.det(vt) < 0):
        s[1, 1] = -1 if d[1] <= d[0] else 1
        if d[1] > d[0]:
            s[0, 0] = -1
    r = u @ s @ vt
    c = 1.0
    if sigma_src != 0:
        c = float(np.trace(np.diag(d) @ s)) / sigma_src
    m = c * r
    return m, mean_dst - m @ mean_src


def chip_rect(landmarks5: np.ndarray, size: int = CHIP_SIZE, padding: float = 0.25):
    """dlib's get_face_chip_details: (rect (l, t, r, b) as floats, angle in radians)."""
    pts = np.asarray(landmarks5, np.float64)
    if pts.shape != (5, 2):
        raise ValueError(f"expected 5 landmarks of shape (5, 2), got {pts.shape}")
    template = (padding + TEMPLATE_5) / (2 * padding + 1) * size
    m, t = similarity_transform(template, pts)
    p = m @ np.array([1.0, 0.0])
    angle = math.atan2(p[1], p[0])
    scale = math.hypot(p[0], p[1])
    centre = m @ np.array([size / 2.0, size / 2.0]) + t
    half = (size * scale - 1) / 2.0  # centered_drect: width - 1
    return (centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half), angle


def _rotate(centre, point, angle):
    cx, cy = centre
    x, y = point[0] - cx, point[1] - cy
    ca, sa = math.cos(angle), math.sin(angle)
    return cx + ca * x - sa * y, cy + sa * x + ca * y


def pyramid_down2(img: np.ndarray) -> np.ndarray:
    """dlib's ``pyramid_down<2>`` on uint8 RGB: 5x5 binomial filter ([1 4 6 4 1] per axis), every other pixel."""
    nr, nc = img.shape[:2]
    if nr <= 8 or nc <= 8:
        return np.zeros((0, 0, 3), np.uint8)
    src = img.astype(np.int32)
    out_c = (nc - 3) // 2
    taps = (1, 4, 6, 4, 1)
    tmp = sum(w * src[:, k : k + 2 * out_c : 2] for k, w in enumerate(taps))
    out_r = (nr - 3) // 2
    down = sum(w * tmp[k : k + 2 * out_r : 2] for k, w in enumerate(taps))
    return (down // 256).astype(np.uint8)


def _rect_down(rect):
    """pyramid_down<2>::rect_down on (l, t, r, b): p / 2 - (1.25, 0.75)."""
    left, top, right, bottom = rect
    return (left / 2 - 1.25, top / 2 - 0.75, right / 2 - 1.25, bottom / 2 - 0.75)


def _area(rect) -> float:
    left, top, right, bottom = rect
    return max(0.0, right - left) * max(0.0, bottom - top)


def _bilinear(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """dlib's interpolate_bilinear on uint8 RGB; pixels whose 2x2 neighbourhood leaves the image are 0."""
    h, w = img.shape[:2]
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    inside = (x0 >= 0) & (y0 >= 0) & (x0 + 1 < w) & (y0 + 1 < h)
    if h < 2 or w < 2:
        return np.zeros((*x.shape, 3), np.uint8)
    x0c, y0c = np.clip(x0, 0, w - 2), np.clip(y0, 0, h - 2)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    f64 = np.float64  # only the gathered pixels are converted, not the whole region
    tl, tr = img[y0c, x0c].astype(f64), img[y0c, x0c + 1].astype(f64)
    bl, br = img[y0c + 1, x0c].astype(f64), img[y0c + 1, x0c + 1].astype(f64)
    val = (1 - fy) * ((1 - fx) * tl + fx * tr) + fy * ((1 - fx) * bl + fx * br)
    out = np.clip(val, 0, 255).astype(np.uint8)  # truncation, as dlib's assign_pixel
    out[~inside] = 0
    return out


def face_chip(rgb: np.ndarray, landmarks5: np.ndarray, size: int = CHIP_SIZE, padding: float = 0.25) -> np.ndarray:
    """Aligned uint8 (size, size, 3) face chip, as ``dlib.get_face_chip(img, shape, size, padding)``.

    dlib's own function does it (0.6 ms a face, against 6 ms for :func:`face_chip_numpy`, the same pixels)
    when the landmarks are whole pixels, as dlib's predictor gives them; sub-pixel landmarks (MTCNN's) go
    through the numpy copy, which takes them as they are.
    """
    lm = np.asarray(landmarks5, np.float64)
    if lm.shape == (5, 2) and np.all(lm == np.round(lm)) and rgb.dtype == np.uint8 and rgb.ndim == 3:
        import dlib

        points = dlib.points([dlib.point(int(x), int(y)) for x, y in lm])
        shape = dlib.full_object_detection(dlib.rectangle(0, 0, 1, 1), points)  # the chip uses only the points
        return np.asarray(dlib.get_face_chip(np.ascontiguousarray(rgb), shape, size, padding))
    return face_chip_numpy(rgb, landmarks5, size, padding)


def face_chip_numpy(rgb: np.ndarray, landmarks5: np.ndarray, size: int = CHIP_SIZE, padding: float = 0.25
                    ) -> np.ndarray:
    """:func:`face_chip` in numpy: dlib's pyramid and bilinear sampling step by step, any landmark precision."""
    rect, angle = chip_rect(landmarks5, size, padding)
    chip_area = size * size
    # How deep dlib's pyramid goes, and the region (grown for border effects) it is built from.
    depth, grow = 0, 2.0
    down = _rect_down(rect)
    while _area(down) > chip_area:
        down = _rect_down(down)
        depth += 1
        grow = grow * 2 + 2
    centre = ((rect[0] + rect[2]) / 2.0, (rect[1] + rect[3]) / 2.0)
    corners = [
        _rotate(centre, p, angle)
        for p in ((rect[0], rect[1]), (rect[2], rect[1]), (rect[0], rect[3]), (rect[2], rect[3]))
    ]
    xs, ys = [c[0] for c in corners], [c[1] for c in corners]
    h, w = rgb.shape[:2]
    bl = max(0.0, min(xs) - grow)
    bt = max(0.0, min(ys) - grow)
    br = min(w - 1.0, max(xs) + grow)
    bb = min(h - 1.0, max(ys) + grow)
    bx0, by0, bx1, by1 = (int(np.floor(v + 0.5)) for v in (bl, bt, br, bb))
    region = rgb[max(by0, 0) : by1 + 1, max(bx0, 0) : bx1 + 1]
    levels = []
    for _ in range(depth):
        region_down = pyramid_down2(levels[-1] if levels else region)
        levels.append(region_down)
    level = -1
    local = (rect[0] - bx0, rect[1] - by0, rect[2] - bx0, rect[3] - by0)
    while _area(_rect_down(local)) > chip_area:
        level += 1
        local = _rect_down(local)
    img = region if level < 0 else levels[level]
    lc = ((local[0] + local[2]) / 2.0, (local[1] + local[3]) / 2.0)
    tl, tr, bl_ = (
        np.array(_rotate(lc, p, angle))
        for p in ((local[0], local[1]), (local[2], local[1]), (local[0], local[3]))
    )
    # affine map chip (c, r) -> source: tl + c * (tr - tl) / (size - 1) + r * (bl - tl) / (size - 1)
    ax = (tr - tl) / (size - 1)
    ay = (bl_ - tl) / (size - 1)
    cols, rows = np.meshgrid(np.arange(size, dtype=np.float64), np.arange(size, dtype=np.float64))
    x = tl[0] + cols * ax[0] + rows * ay[0]
    y = tl[1] + cols * ax[1] + rows * ay[1]
    return _bilinear(img, x, y)


def grey_crop_128(image: np.ndarray, face: np.ndarray | tuple, order: str = "bgr") -> np.ndarray:
    """The seed classifiers' crop: 128x128 grey float32 in [0, 1] (``engines/preprocess.py`` face_crop_128).

    ``face`` is either 5 landmarks (the crop is dlib's chip square, padding 0.25, without rotation) or a box
    (x1, y1, x2, y2). ``order`` says whether a colour ``image`` is BGR (OpenCV frames) or RGB.
    """
    arr = np.asarray(face, np.float64)
    if arr.shape == (5, 2):
        (left, top, right, bottom), _ = chip_rect(arr, CROP_SIZE, 0.25)
        box = (left, top, right + 1, bottom + 1)
    elif arr.shape == (4,):
        box = tuple(float(v) for v in arr)
    else:
        raise ValueError(f"face must be 5 landmarks (5, 2) or a box (4,), got shape {arr.shape}")
    return face_crop_128(image, box, order=order)
