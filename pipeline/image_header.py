"""The size an image file declares in its header, read without decoding it.

A few hundred bytes of PNG or JPEG can declare a gigapixel image; whoever decodes untrusted bytes (a photo
to enrol, a JPEG payload from a peer) checks the declared size first.
"""

from __future__ import annotations

import struct

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic); not DHT (C4), JPG (C8), DAC (CC).
_SOF_MARKERS = frozenset((0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF))


def declared_size(data: bytes | memoryview) -> tuple[int, int] | None:
    """(width, height) a PNG or JPEG header declares, without decoding; None for other or broken headers."""
    data = bytes(data[:65536]) if not isinstance(data, bytes) else data
    if data[:8] == _PNG_MAGIC and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            length = struct.unpack(">H", data[i + 2 : i + 4])[0]
            if marker in _SOF_MARKERS:
                h, w = struct.unpack(">HH", data[i + 5 : i + 9])
                return w, h
            i += 2 + length
    return None
