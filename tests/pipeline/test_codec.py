"""Payload decoding of untrusted JPEG bytes: the JPEG's own header is checked before anything is decoded."""

from __future__ import annotations

import struct

import cv2
import numpy as np
import pytest

from facestream.pipeline.codec import PayloadDecoder
from facestream.pipeline.image_header import declared_size
from facestream.pipeline.wire import ENC_JPEG, Item, Payload, WireError


def _jpeg(h: int = 8, w: int = 8) -> bytes:
    ok, buf = cv2.imencode(".jpg", np.full((h, w, 3), 128, np.uint8))
    assert ok
    return buf.tobytes()


def _declare(jpeg: bytes, w: int, h: int) -> bytes:
    """The same JPEG with its start-of-frame header rewritten to declare w x h."""
    i = 2
    while True:
        marker, length = jpeg[i + 1], struct.unpack(">H", jpeg[i + 2 : i + 4])[0]
        if marker == 0xC0:
            return jpeg[: i + 5] + struct.pack(">HH", h, w) + jpeg[i + 9 :]
        i += 2 + length


def _item(data: bytes, shape: tuple[int, ...]) -> Item:
    it = Item("cam", 0, 1, 1)
    it.payload = Payload(ENC_JPEG, shape, "uint8", len(data))
    it.data = np.frombuffer(data, np.uint8)
    return it


def test_declared_size_reads_jpeg_and_png_headers():
    assert declared_size(_jpeg(6, 10)) == (10, 6)
    ok, png = cv2.imencode(".png", np.zeros((7, 3), np.uint8))
    assert declared_size(png.tobytes()) == (3, 7)
    assert declared_size(b"GIF89a....") is None


def test_a_jpeg_declaring_a_gigapixel_frame_is_refused_before_decoding():
    evil = _declare(_jpeg(), 60000, 60000)
    with pytest.raises(WireError) as e:
        PayloadDecoder().array(_item(evil, (8, 8, 3)))
    assert e.value.reason == "bad_shape" and "declares 60000x60000" in str(e.value)


def test_bytes_without_a_jpeg_frame_header_are_refused():
    with pytest.raises(WireError) as e:
        PayloadDecoder().array(_item(b"\xff\xd8" + b"\x00" * 64, (8, 8, 3)))
    assert e.value.reason == "bad_jpeg"


def test_a_good_jpeg_still_decodes():
    got = PayloadDecoder().array(_item(_jpeg(12, 16), (12, 16, 3)))
    assert got.shape == (12, 16, 3) and abs(int(got.mean()) - 128) <= 2
