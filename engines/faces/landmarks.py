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
        shape = self._predictor(rgb, dlib_rectangle(box))
        return np.array([(shape.part(i).x, shape.part(i).y) for i in range(shape.num_parts)], np.float32)
