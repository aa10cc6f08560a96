"""dlib's 5-point face landmarks (``shape_predictor_5_face_landmarks.dat``, CC0), on the CPU.

Points: 0-1 the outer and inner corner of the eye on the image's right, 2-3 those of the other eye, 4 the
base of the nose. The 68-point model is never used (its training data forbids commercial use).
"""

from __future__ import annotations

import numpy as np

from facestream.errors import FacestreamError

Box = tuple[float, float, float, float]


def dlib_rectangle(box: Box):
    """(x1, y1, x2, y2) with x2 exclusive -> dlib.rectangle (inclusive right/bottom)."""
    import dlib

    x1, y1, x2, y2 = (int(np.floor(v + 0.5)) for v in box)
    return dlib.rectangle(x1, y1, x2 - 1, y2 - 1)


class LandmarkPredictor:
    def __init__(self, model_path: str | None = None):
        import dlib

        from facestream.engines.dlib_import.importer import LANDMARKS5_FILE, model_file

        self._predictor = dlib.shape_predictor(str(model_path or model_file(LANDMARKS5_FILE)))

    def predict(self, rgb: np.ndarray, box: Box) -> np.ndarray:
        """5 landmarks (x, y) as float32 (5, 2) for the face in ``box`` of an RGB uint8 image."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise FacestreamError(
                f"landmark input must be an RGB uint8 array (H,W,3), got {rgb.shape} {rgb.dtype}"
            )
        # The predictor reads pixels near the box only; handing dlib a crop (one face side of margin) instead of
        # the whole frame saves converting the frame for every face (0.6 ms instead of 1.0 at 720p).
        h, w = rgb.shape[:2]
        side = max(box[2] - box[0], box[3] - box[1])
        x0, y0 = max(0, int(box[0] - side)), max(0, int(box[1] - side))
        x1, y1 = min(w, int(np.ceil(box[2] + side))), min(h, int(np.ceil(box[3] + side)))
        crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
        x1b, y1b, x2b, y2b = box
        shape = self._predictor(crop, dlib_rectangle((x1b - x0, y1b - y0, x2b - x0, y2b - y0)))
        return np.array([(shape.part(i).x + x0, shape.part(i).y + y0) for i in range(shape.num_parts)], np.float32)
