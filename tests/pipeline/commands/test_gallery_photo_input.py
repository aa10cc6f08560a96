"""Hostile or useless enrolment photos are refused with the reason, before anything large is allocated.
Needs no face data: synthetic files and scikit-image's astronaut."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from facestream.errors import FacestreamError
from facestream.pipeline.recognition.enrolment import declared_size, read_photo


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG declaring width x height with one tiny compressed row: a decompression bomb's header."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))  # noqa: E731
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


def test_declared_size_reads_png_and_jpeg_headers():
    ok, jpg = cv2.imencode(".jpg", np.zeros((37, 53, 3), np.uint8))
    assert declared_size(jpg.tobytes()) == (53, 37)
    ok, png = cv2.imencode(".png", np.zeros((21, 17, 3), np.uint8))
    assert declared_size(png.tobytes()) == (17, 21)
    assert declared_size(b"GIF89a....") is None


def test_gigantic_declared_image_is_refused_before_decoding(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header_only(50_000, 50_000))
    with pytest.raises(FacestreamError, match="image too large \\(50000x50000 pixels\\)"):
        read_photo(bomb)


@pytest.mark.parametrize(("content", "reason"), [(b"", "not an image"), (b"%PDF-1.4 not a photo", "not an image")])
def test_non_images_are_refused(tmp_path, content, reason):
    p = tmp_path / "x.jpg"
    p.write_bytes(content)
    with pytest.raises(FacestreamError, match=reason):
        read_photo(p)


def test_photo_without_a_face_is_refused_with_the_reason(tmp_path):
    from facestream.pipeline.recognition.enrolment import PhotoEnroller

    p = tmp_path / "wall.png"
    cv2.imwrite(str(p), np.full((300, 300, 3), 128, np.uint8))
    with pytest.raises(FacestreamError, match="no face"):
        PhotoEnroller().enrol_item(p)
