"""Image preparation shared by the pipeline, training and evaluation.

``face_crop_128`` is the classic recipe's normalisation: crop -> 128x128 -> grey -> /255.
"""

from __future__ import annotations

import cv2
import numpy as np

CROP_SIZE = 128


def to_grey(image: np.ndarray, order: str = "bgr") -> np.ndarray:
    """BGR (or RGB, ``order``) (H,W,3) or grey (H,W) uint8 -> grey (H,W) uint8."""
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY if order == "rgb" else cv2.COLOR_BGR2GRAY)
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    raise ValueError(f"expected an image of shape (H,W), (H,W,1) or (H,W,3), got {image.shape}")


def clip_box(box: tuple[float, float, float, float], width: int, height: int) -> tuple[int, int, int, int]:
    """(x1, y1, x2, y2) floats -> integer box inside the image; may be empty."""
    x1, y1, x2, y2 = box
    x1 = int(max(0, min(width, round(x1))))
    x2 = int(max(0, min(width, round(x2))))
    y1 = int(max(0, min(height, round(y1))))
    y2 = int(max(0, min(height, round(y2))))
    return x1, y1, max(x1, x2), max(y1, y2)


def face_crop_128(
    image: np.ndarray,
    box: tuple[float, float, float, float] | None = None,
    size: int = CROP_SIZE,
    order: str = "bgr",
) -> np.ndarray:
    """Crop ``box`` (x1,y1,x2,y2; whole image if None), resize to size x size, grey, scale to [0,1] float32.

    Colour ``image`` is BGR (OpenCV frames) or RGB (``order``); only the crop is converted, never the frame."""
    if order not in ("bgr", "rgb"):
        raise ValueError(f"order must be 'bgr' or 'rgb', got {order!r}")
    if box is not None:
        x1, y1, x2, y2 = clip_box(box, image.shape[1], image.shape[0])
        if x2 - x1 < 2 or y2 - y1 < 2:
            raise ValueError(f"face box {box} is empty inside a {image.shape[1]}x{image.shape[0]} image")
        image = image[y1:y2, x1:x2]
    grey = to_grey(image, order)
    interp = cv2.INTER_AREA if grey.shape[0] > size else cv2.INTER_LINEAR
    crop = cv2.resize(grey, (size, size), interpolation=interp)
    return crop.astype(np.float32) / 255.0


def letterbox(image: np.ndarray, width: int, height: int) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Resize keeping aspect ratio into width x height, pad with black. Returns (image, scale, (pad_x, pad_y)).

    A point (x, y) in the output maps back to ((x - pad_x) / scale, (y - pad_y) / scale).
    """
    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    out = np.zeros((height, width, *image.shape[2:]), dtype=image.dtype)
    px, py = (width - nw) // 2, (height - nh) // 2
    out[py : py + nh, px : px + nw] = resized
    return out, scale, (px, py)
