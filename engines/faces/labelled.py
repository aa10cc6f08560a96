"""Labelled photos (dlib's imglab XML, as in its face-detection data) and the score of a detector on them."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from .regions import iou

LabelledBox = tuple[int, int, int, int, bool]  # x1, y1, x2, y2, ignore


def read_imglab(xml: Path) -> Iterator[tuple[Path, list[LabelledBox]]]:
    """(photo path, boxes) per image of an imglab XML file; ``ignore`` boxes are faces not to be scored."""
    for image in ET.parse(xml).getroot().iter("image"):
        boxes = [(int(b.get("left")), int(b.get("top")), int(b.get("left")) + int(b.get("width")),
                  int(b.get("top")) + int(b.get("height")), b.get("ignore") in ("1", "true"))
                 for b in image.iter("box")]
        yield xml.parent / image.get("file"), boxes


def score_labelled(found: Iterable[tuple[float, ...]], labelled: Sequence[tuple[float, float, float, float, bool]],
                   min_iou: float = 0.5) -> tuple[int, int, int]:
    """(true positives, false positives, labelled faces) of one photo. ``labelled`` boxes end with their
    ``ignore`` flag (dlib's imglab XML): each found box takes the best unused face at ``min_iou``; a box on an
    ignored face counts neither way."""
    truth = [b[:4] for b in labelled if not b[4]]
    ignore = [b[:4] for b in labelled if b[4]]
    tp = fp = 0
    used: set[int] = set()
    for box in found:
        best = max(((iou(box, g), i) for i, g in enumerate(truth) if i not in used), default=(0.0, -1))
        if best[0] >= min_iou:
            used.add(best[1])
            tp += 1
        elif not any(iou(box, g) >= min_iou for g in ignore):
            fp += 1
    return tp, fp, len(truth)
