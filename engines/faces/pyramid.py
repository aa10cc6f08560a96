"""dlib's tiled image pyramid (``image_pyramid.h``, ``input.h``), reproduced so the ONNX detector sees
exactly the tensor dlib's ``cnn_face_detection_model_v1`` builds.

Levels shrink by ``pyramid_down<6>`` (each ``floor(5/6 x previous)``) until the height would drop below 5.
All levels are packed into one image: down a first column, then back up the right side, ``padding`` pixels
apart inside an ``outer_padding`` border. Each level is an align-corners bilinear resize of the previous
one. The background is the mean colour (zero after the network's normalisation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PYRAMID_N = 6  # pyramid_down<6>: each level is 5/6 of the previous
MIN_LEVEL_HEIGHT = 5


@dataclass(frozen=True)
class Rect:
    """Inclusive integer rectangle, as dlib's ``rectangle``."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left + 1

    @property
    def height(self) -> int:
        return self.bottom - self.top + 1


def level_sizes(nr: int, nc: int, n: int = PYRAMID_N, max_levels: int | None = None) -> list[tuple[int, int]]:
    """(rows, cols) of each pyramid level, the original first."""
    sizes = [(nr, nc)]
    rate = (n - 1.0) / n
    while max_levels is None or len(sizes) < max_levels:
        nr, nc = int(np.floor(rate * nr)), int(np.floor(rate * nc))
        if nr * nc == 0 or nr < MIN_LEVEL_HEIGHT:
            break
        sizes.append((nr, nc))
    return sizes


def tile_layout(
    nr: int,
    nc: int,
    padding: int = 10,
    outer_padding: int = 11,
    n: int = PYRAMID_N,
    max_levels: int | None = None,
) -> tuple[list[Rect], int, int]:
    """dlib's ``compute_tiled_image_pyramid_details``: (level rects, tiled rows, tiled cols)."""
    sizes = level_sizes(nr, nc, n, max_levels)
    heights = [r for r, _ in sizes]
    widths = [c for _, c in sizes]
    total_height = sum(h + padding for h in heights) - 2 * padding
    height = 0
    prev_width = 0
    for h, w in zip(heights, widths, strict=True):
        if w <= widths[0] - prev_width - padding and (height - heights[0]) * 2 >= total_height - heights[0]:
            break
        height += h + padding
        prev_width = w
    height -= padding
    width = widths[0]
    out_nr, out_nc = height + 2 * outer_padding, width + 2 * outer_padding

    rects: list[Rect] = []
    y = outer_padding
    i = 0
    while y < height + outer_padding and i < len(sizes):
        rects.append(Rect(outer_padding, y, outer_padding + widths[i] - 1, y + heights[i] - 1))
        y += heights[i] + padding
        i += 1
    y -= padding
    first = rects[0]
    while i < len(sizes):
        right, bottom = outer_padding + width - 1, y - 1
        rect = Rect(right - (widths[i] - 1), bottom - (heights[i] - 1), right, bottom)
        overlap = not (
            rect.left > first.right
            or rect.right < first.left
            or rect.top > first.bottom
            or rect.bottom < first.top
        )
        if overlap:
            break
        rects.append(rect)
        y -= heights[i] + padding
        i += 1
    return rects, out_nr, out_nc


def resize_bilinear(src: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """dlib's ``resize_image`` bilinear (align-corners scaling) on float32 planes (C, H, W).

    Done separably (rows, then columns): the same weights as dlib's 2x2 formula, summed in another order.
    """
    in_r, in_c = src.shape[1:]
    y_scale = (in_r - 1) / max(rows - 1, 1)
    x_scale = (in_c - 1) / max(cols - 1, 1)
    y = np.arange(rows, dtype=np.float64) * y_scale
    x = np.arange(cols, dtype=np.float64) * x_scale
    top = np.floor(y).astype(np.intp)
    left = np.floor(x).astype(np.intp)
    bottom = np.minimum(top + 1, in_r - 1)
    right = np.minimum(left + 1, in_c - 1)
    ty = (y - top).astype(np.float32)[None, :, None]
    tx = (x - left).astype(np.float32)[None, None, :]
    upper, lower = np.take(src, top, axis=1), np.take(src, bottom, axis=1)
    lower -= upper  # in place: upper + ty * (lower - upper), with no further temporaries
    lower *= ty
    upper += lower
    lft, rgt = np.take(upper, left, axis=2), np.take(upper, right, axis=2)
    rgt -= lft
    rgt *= tx
    lft += rgt
    return lft


def build_tiled_pyramid(
    rgb: np.ndarray,
    mean_rgb: tuple[float, float, float],
    padding: int = 10,
    outer_padding: int = 11,
    max_levels: int | None = None,
) -> tuple[np.ndarray, list[Rect]]:
    """Tiled pyramid of an RGB (H, W, 3) image as float32 planes (3, rows, cols) in pixel units, mean-colour
    background: the detector network's input for one image."""
    nr, nc = rgb.shape[:2]
    rects, out_nr, out_nc = tile_layout(nr, nc, padding, outer_padding, max_levels=max_levels)
    out = np.empty((3, out_nr, out_nc), np.float32)
    out[:] = np.asarray(mean_rgb, np.float32)[:, None, None]
    # Bilinear resizing is linear with weights summing to 1, so resizing pixel values and normalising in the
    # network equals dlib's resizing of normalised values (to float rounding), and values stay in 0..255.
    level = np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32)
    r0 = rects[0]
    out[:, r0.top : r0.bottom + 1, r0.left : r0.right + 1] = level
    for rect in rects[1:]:
        level = resize_bilinear(level, rect.height, rect.width)
        np.clip(level, 0.0, 255.0, out=level)  # float rounding can leave 255.00002
        out[:, rect.top : rect.bottom + 1, rect.left : rect.right + 1] = level
    return out, rects


def nearest_rect(rects: list[Rect], x: float, y: float) -> int:
    """Index of the rect nearest to point (x, y) (distance 0 inside); the first on ties, like dlib."""
    best, best_d = 0, float("inf")
    for i, r in enumerate(rects):
        dx = max(r.left - x, 0.0, x - r.right)
        dy = max(r.top - y, 0.0, y - r.bottom)
        d = dx * dx + dy * dy
        if d < best_d:
            best, best_d = i, d
    return best


def tiled_to_image(rects: list[Rect], box: tuple[float, float, float, float], n: int = PYRAMID_N):
    """Map a box (l, t, r, b) in the tiled image back to the original image (dlib's tiled_pyramid_to_image)."""
    x1, y1, x2, y2 = box
    level = nearest_rect(rects, (x1 + x2) / 2.0, (y1 + y2) / 2.0)
    ox, oy = rects[level].left, rects[level].top
    x1, y1, x2, y2 = x1 - ox, y1 - oy, x2 - ox, y2 - oy
    ratio = n / (n - 1.0)
    for _ in range(level):  # pyramid_down<6>::point_up, once per level
        x1, y1, x2, y2 = x1 * ratio + 0.3, y1 * ratio + 0.3, x2 * ratio + 0.3, y2 * ratio + 0.3
    return x1, y1, x2, y2
