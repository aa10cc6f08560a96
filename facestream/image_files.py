"""Reading an image file of any format facestream accepts, shared by engines and pipeline.

OpenCV decodes first (fast, and what frames go through); Pillow is the fallback for what the installed OpenCV
does not read (GIF before OpenCV 4.11, some TIFF and WEBP variants, palette images). Whatever the file holds
(grey, grey + alpha, palette, RGB(A), 16-bit) comes back as uint8: grey ``(H, W)`` or BGR ``(H, W, 3)``. The
first frame of a multi-frame GIF or TIFF is read.
"""

from __future__ import annotations

import io

import numpy as np

from facestream.errors import FacestreamError


def _to_uint8(img: np.ndarray) -> np.ndarray:
    """16-bit / float images scaled to 0..255 by their own maximum (PGM and TIFF can be 16-bit)."""
    if img.dtype == np.uint8:
        return img
    top = float(img.max()) if img.size else 0.0
    scaled = img.astype(np.float64) * (255.0 / top if top > 0 else 0.0)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _grey_or_bgr(img: np.ndarray, colour: bool) -> np.ndarray:
    """Drop alpha (BGRA -> BGR, grey+alpha -> grey); with ``colour`` a grey image is repeated to BGR."""
    import cv2

    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    elif img.ndim == 3 and img.shape[2] == 2:
        img = img[:, :, 0]
    elif img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, :3]
    img = _to_uint8(img)
    if colour and img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(img)


def decode_with_pillow(data: bytes, max_pixels: int | None = None, colour: bool = False) -> np.ndarray | None:
    """Pillow's decode of ``data``: grey ``(H, W)`` for grey / palette-of-greys images, else BGR (always BGR
    with ``colour``); None when Pillow is missing, cannot read it, or it declares more than ``max_pixels``."""
    try:
        from PIL import Image
    except ImportError:
        return None
    try:
        with Image.open(io.BytesIO(data)) as im:
            if max_pixels is not None and im.width * im.height > max_pixels:
                return None
            if im.mode in ("L", "LA", "1") or (im.mode == "P" and _palette_is_grey(im)):
                img = np.asarray(im.convert("L"))
            elif im.mode.startswith("I") or im.mode == "F":  # 16/32-bit grey
                img = np.asarray(im)
            else:
                img = np.asarray(im.convert("RGB"))[:, :, ::-1]
        return _grey_or_bgr(img, colour)
    except Exception:  # noqa: BLE001 - any decoder failure means "not an image"
        return None


def _palette_is_grey(im) -> bool:
    palette = im.getpalette() or []
    rgb = np.asarray(palette[: len(palette) // 3 * 3]).reshape(-1, 3)
    return bool(rgb.size) and bool((rgb == rgb[:, :1]).all())


def decode_image(data: bytes, colour: bool = False, max_pixels: int | None = None) -> np.ndarray | None:
    """uint8 grey ``(H, W)`` or BGR ``(H, W, 3)`` (always BGR with ``colour``) from encoded bytes; None when
    neither OpenCV nor Pillow can read them."""
    import cv2

    # ANYCOLOR | ANYDEPTH keeps grey grey and 16 bits 16 (scaled below), and applies EXIF orientation.
    flags = cv2.IMREAD_COLOR if colour else cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH
    img = cv2.imdecode(np.frombuffer(data, np.uint8), flags) if data else None
    if img is not None and img.size:
        return _grey_or_bgr(img, colour)
    return decode_with_pillow(data, max_pixels, colour) if data else None


def read_image(path, colour: bool = False) -> np.ndarray:
    """The image in file ``path`` as :func:`decode_image` returns it; FacestreamError naming the file when
    it is missing or no decoder reads it."""
    from pathlib import Path

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FacestreamError(f"cannot read image {path} ({exc.strerror or type(exc).__name__})") from exc
    img = decode_image(data, colour)
    if img is None:
        raise FacestreamError(f"cannot read image {path} (not a valid {path.suffix.lstrip('.') or 'image'} file)")
    return img
