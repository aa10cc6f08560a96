"""The one mapping from the pixels faces were found in back to the pixels of the source image.

Detection runs on a resized frame (preprocess's detector frame, or a still photo read at a smaller size);
``scale`` says how large that frame is relative to the source (0.5: half the width and height). Boxes and
landmarks that leave the detector are mapped here, and only here, so a box means the same in a stream's
results, its events and ``facestream identify``'s output.
"""

from __future__ import annotations

from collections.abc import Iterable


def to_source(values: Iterable[float], scale: float) -> tuple[float, ...]:
    """Detector-frame coordinates -> source pixels (the frame is ``scale`` x source), rounded to 0.1 px.

    A scale of 0 (or less) means none was given: the coordinates are source pixels already.
    """
    inv = 1.0 / scale if scale > 0 else 1.0
    return tuple(round(float(v) * inv, 1) for v in values)
