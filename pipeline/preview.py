"""The live-view feed: the sink publishes annotated JPEG frames per camera on a ZeroMQ PUB socket; the web app
subscribes. One message is three frames: ``[stream id, header JSON, JPEG bytes]``.

The header carries what a tile shows beside the picture: ``seq``, ``ts_ns`` (capture wall clock),
``latency_ms``, ``fps`` (results per second of the stream over the last seconds), ``dropped`` (frames dropped so
far), ``faces`` (``identity`` and ``track`` of each face drawn) and the picture's ``width``/``height``.
Faces not in the gallery are already blurred in the JPEG when ``privacy.blur_unknown`` is set: the web app never
sees their pixels. The subscriber validates every message (the publisher is a peer) and drops bad ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# Events whose frame the sink keeps (out_dir/frames/EVENT_ID.jpg): inference always forwards their pixels
# while the live view is on.
EVENT_FRAME_KINDS = ("identified", "identity_changed")
MAX_JPEG_BYTES = 8 << 20
MAX_HEADER_BYTES = 64 << 10
_JPEG_MAGIC = b"\xff\xd8"


@dataclass(frozen=True)
class PreviewFrame:
    stream: str
    header: dict[str, Any]
    jpeg: bytes


def encode_preview(stream: str, header: dict[str, Any], jpeg: bytes) -> list[bytes]:
    return [stream.encode(), json.dumps(header, separators=(",", ":")).encode(), jpeg]


def decode_preview(parts: list[bytes]) -> PreviewFrame | None:
    """A checked frame, or None for anything malformed (wrong part count, oversize, not JSON, not a JPEG)."""
    if len(parts) != 3:
        return None
    topic, header_bytes, jpeg = parts
    if not (0 < len(topic) <= 128) or len(header_bytes) > MAX_HEADER_BYTES or len(jpeg) > MAX_JPEG_BYTES:
        return None
    if not jpeg.startswith(_JPEG_MAGIC):
        return None
    try:
        stream = topic.decode()
        header = json.loads(header_bytes)
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(header, dict) or not stream.isprintable():
        return None
    return PreviewFrame(stream, header, bytes(jpeg))
