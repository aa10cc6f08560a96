"""Best-shot crops: the aligned chip of a track's best-quality face, one JPEG per track under the crop folder.

In the pipeline the chip travels with its event to the sink (``ship`` mode), which writes it under its own
``out_dir/crops``: crops are kept where the events are, also when inference runs on other hosts. Used alone
(tests, tools), the recognizer writes the file itself.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np


def safe_folder_name(name: str) -> str:
    """A stream id as a folder name (no path separators or odd characters, and never ``.`` or ``..``: a
    stream id from the wire may be all dots)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:80] or "stream"
    return safe.replace(".", "_") if not safe.strip(".") else safe


def best_shot_file(crop_dir: Path, stream_id: str, track_ref: str) -> Path:
    """Where a track's best shot lives: ``crop_dir/STREAM/TRACK_REF.jpg`` (the sink computes the same)."""
    return crop_dir / safe_folder_name(stream_id) / f"{track_ref}.jpg"


def encode_best_shot(chip: np.ndarray) -> bytes | None:
    """An RGB chip as JPEG bytes, to travel with its event to the sink."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(chip, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return buf.tobytes() if ok else None


def write_best_shot(crop_dir: Path | None, stream_id: str, track_ref: str, chip: np.ndarray | None) -> str | None:
    """``crop_dir/STREAM/TRACK_REF.jpg`` from an RGB chip; None when crops are off or there is no chip."""
    if crop_dir is None or chip is None:
        return None
    path = best_shot_file(crop_dir, stream_id, track_ref)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(chip, cv2.COLOR_RGB2BGR))
    return str(path)


def best_shot(crop_dir: Path | None, ship: bool, stream_id: str, track_ref: str,
              chip: np.ndarray | None) -> tuple[str | None, bytes | None]:
    """(path, JPEG bytes) of a track's best shot: shipped, the path is where the sink will write the bytes;
    otherwise the file is written here and no bytes travel."""
    if crop_dir is None or chip is None:
        return None, None
    if ship:
        return str(best_shot_file(crop_dir, stream_id, track_ref)), encode_best_shot(chip)
    return write_best_shot(crop_dir, stream_id, track_ref, chip), None
