"""Best-shot crops: the aligned chip of a track's best-quality face, one JPEG per track under the crop folder."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np


def safe_folder_name(name: str) -> str:
    """A stream id as a folder name (no path separators or odd characters)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:80] or "stream"


def write_best_shot(crop_dir: Path | None, stream_id: str, track_ref: str, chip: np.ndarray | None) -> str | None:
    """``crop_dir/STREAM/TRACK_REF.jpg`` from an RGB chip; None when crops are off or there is no chip."""
    if crop_dir is None or chip is None:
        return None
    folder = crop_dir / safe_folder_name(stream_id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{track_ref}.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(chip, cv2.COLOR_RGB2BGR))
    return str(path)
