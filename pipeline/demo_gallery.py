"""The embedded demo's gallery: the astronaut in the demo clip, enrolled from a *different* view of her photo.

scikit-image's ``astronaut()`` is NASA's portrait of Eileen Collins (public domain). The clip pans and zooms
over the photo; the enrolment image is a mirrored, slightly rotated, darker crop, so the demo shows real
matching across views rather than a pixel-identical lookup.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import cv2
import numpy as np

DEMO_PERSON = "Eileen Collins"
log = logging.getLogger(__name__)


def enrolment_view() -> np.ndarray:
    """RGB: mirrored, rotated by 6 degrees, 25% darker, cropped around the head and shoulders."""
    from skimage import data

    rgb = np.ascontiguousarray(data.astronaut()[:, ::-1])
    h, w = rgb.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 6.0, 1.0)
    rgb = cv2.warpAffine(rgb, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    rgb = (rgb.astype(np.float32) * 0.75).astype(np.uint8)
    return np.ascontiguousarray(rgb[0:330, 150:480])


def ensure_demo_gallery(path: Path, models_dir: str = "", detector: str = "hog") -> Path:
    """Create (once) a gallery at ``path`` holding the demo person; returns the path.

    The view goes through the same enrolment (and quality gate) as ``facestream gallery add``, with the
    run's detector type.
    """
    from facestream.engines.store import ModelStore

    from .recognition.enrolment import PhotoEnroller
    from .recognition.gallery import Gallery

    path = Path(path)
    with Gallery(path) as gallery:
        if DEMO_PERSON in gallery.names():
            return path
        view = enrolment_view()
        item = PhotoEnroller(detector, store=ModelStore(models_dir or None)).item_from_rgb(
            view, hashlib.sha256(view.tobytes()).hexdigest(),
            source="skimage.data.astronaut (mirrored, rotated, darker)", label="demo enrolment view",
        )
        gallery.enrol(DEMO_PERSON, [item])
    log.info("demo: enrolled %s in %s from a different view of the photo", DEMO_PERSON, path)
    return path
