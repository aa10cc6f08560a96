"""Fit ``engines/faces/mtcnn.py``'s ``DLIB_BOX``: how MTCNN's box maps onto dlib's (the box dlib's HOG and the
labelled photos draw), on data no benchmark reports on: the LFW subset (dlib HOG upsample 1 boxes) and dlib's
``training.xml`` labels (benchmarks report on testing.xml and the street video).

    python bench/fit_mtcnn_box.py

Prints the medians (centre shift in MTCNN widths/heights, side ratios) and, with them applied, the precision and
recall on training.xml per O-Net threshold.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from facestream.engines.faces.detector import HogDetector  # noqa: E402
from facestream.engines.faces.labelled import read_imglab, score_labelled  # noqa: E402
from facestream.engines.faces.mtcnn import MtcnnDetector  # noqa: E402
from facestream.engines.faces.regions import iou  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TRAINING = SHARED / "dlib_faces_detection" / "faces" / "training.xml"


def labelled(xml: Path):
    for path, boxes in read_imglab(xml):
        yield cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB), boxes


def main() -> None:
    raw = MtcnnDetector(dlib_box=None, backend="onnxruntime")
    hog = HogDetector(1)
    pairs = []
    samples = [(img, [d.box for d in hog.detect(img)]) for img in
               (cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in sorted(SHARED.glob("lfw_subset_10x10/*/*.jpg")))]
    samples += [(img, [b[:4] for b in boxes if not b[4]]) for img, boxes in labelled(TRAINING)]
    for img, targets in samples:
        found = [d.box for d in raw.detect(img)]
        for t in targets:
            best = max(found, key=lambda b: iou(b, t), default=None)
            if best is None or iou(best, t) < 0.3:
                continue
            w, h = best[2] - best[0], best[3] - best[1]
            pairs.append((((t[0] + t[2]) - (best[0] + best[2])) / 2 / w, ((t[1] + t[3]) - (best[1] + best[3])) / 2 / h,
                          (t[2] - t[0]) / w, (t[3] - t[1]) / h))
    fit = tuple(round(float(v), 3) for v in np.median(np.asarray(pairs), axis=0))
    print(f"{len(pairs)} pairs; DLIB_BOX = {fit}")
    for thr in (0.7, 0.8, 0.9, 0.95):
        det = MtcnnDetector(dlib_box=fit, thresholds=(0.6, 0.7, thr), backend="onnxruntime")
        tp = fp = n = 0
        for img, boxes in labelled(TRAINING):
            t, f, k = score_labelled([d.box for d in det.detect(img)], boxes)
            tp, fp, n = tp + t, fp + f, n + k
        print(f"O-Net threshold {thr}: training.xml precision {tp / max(1, tp + fp):.3f} recall {tp / max(1, n):.3f}")


if __name__ == "__main__":
    main()
