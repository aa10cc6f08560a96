"""facestream.image_files: one reader for every image format facestream accepts (engines and pipeline)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from facestream.errors import FacestreamError
from facestream.image_files import decode_image, decode_with_pillow, read_image


def _grey() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (24, 18), dtype=np.uint8)


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["GIF", "TIFF", "BMP", "PPM", "PNG"])
def test_lossless_grey_formats_read_back_exactly(fmt):
    grey = _grey()
    out = decode_image(_encode(Image.fromarray(grey), fmt))
    assert out is not None and out.dtype == np.uint8 and out.shape[:2] == grey.shape
    if out.ndim == 3:  # some decoders hand grey back as three equal channels
        assert (out == out[:, :, :1]).all()
        out = out[:, :, 0]
    np.testing.assert_array_equal(out, grey)


def test_lossless_webp_colour_is_bgr():
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[..., 0] = 200  # red
    out = decode_image(_encode(Image.fromarray(rgb), "WEBP", lossless=True))
    assert out.shape == (16, 16, 3) and out[0, 0].tolist() == [0, 0, 200]


def test_sixteen_bit_grey_is_scaled_to_eight_bits():
    wide = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).astype(np.uint16)
    out = decode_image(_encode(Image.fromarray(wide), "TIFF"))
    assert out.dtype == np.uint8 and out.max() == 255 and out.min() == 0


def test_colour_option_always_gives_bgr():
    out = decode_image(_encode(Image.fromarray(_grey()), "GIF"), colour=True)
    assert out.shape == (24, 18, 3)
    assert decode_with_pillow(_encode(Image.fromarray(_grey()), "GIF"), colour=True).shape == (24, 18, 3)


def test_pillow_keeps_a_grey_palette_grey_and_refuses_oversized():
    data = _encode(Image.fromarray(_grey()), "GIF")
    assert decode_with_pillow(data).shape == (24, 18)
    assert decode_with_pillow(data, max_pixels=100) is None


def test_alpha_is_dropped():
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 2] = 255  # blue, fully transparent
    out = decode_image(_encode(Image.fromarray(rgba), "PNG"))
    assert out.shape == (8, 8, 3) and out[0, 0].tolist() == [255, 0, 0]


def test_garbage_and_missing_files_are_named(tmp_path):
    assert decode_image(b"") is None and decode_image(b"not an image") is None
    bad = tmp_path / "x.gif"
    bad.write_bytes(b"GIF89a but not really")
    for path, words in ((bad, "not a valid gif file"), (tmp_path / "nope.png", "cannot read image")):
        with pytest.raises(FacestreamError) as info:
            read_image(path)
        assert str(path) in str(info.value) and words in str(info.value)
