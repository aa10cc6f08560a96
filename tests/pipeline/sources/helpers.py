"""Shared helpers for source tests: metric reads and synthetic media written to tmp."""

from __future__ import annotations

import uuid
from pathlib import Path

import cv2
import numpy as np
from prometheus_client import REGISTRY


def metric(name: str, stream: str) -> float:
    return REGISTRY.get_sample_value(name, {"stream": stream}) or 0.0


def unique_id(prefix: str) -> str:
    """A stream id no other test uses, so metric counts start at zero."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def numbered_frame(i: int, width: int = 160, height: int = 120) -> np.ndarray:
    """A frame whose mean brightness encodes ``i`` (survives lossy compression)."""
    image = np.full((height, width, 3), (i * 7) % 200 + 20, np.uint8)
    cv2.putText(image, str(i), (10, height // 2), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2)
    return image


def write_video(path: Path, n: int, fourcc: str = "mp4v", width: int = 160, height: int = 120) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 25.0, (width, height))
    assert writer.isOpened(), f"cannot write {path} with {fourcc}"
    for i in range(n):
        writer.write(numbered_frame(i, width, height))
    writer.release()
    return path
