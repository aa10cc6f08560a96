"""Fixtures for the stage tests: the astronaut photo (tests/conftest.py) in both channel orders, and where its
face is."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

# The astronaut photo's face (512 x 512 source pixels), where dlib's HOG detector boxes it.
ASTRONAUT_FACE = (177.0, 80.0, 267.0, 170.0)


@pytest.fixture(scope="session")
def astronaut_rgb(astronaut) -> np.ndarray:
    return astronaut


@pytest.fixture(scope="session")
def astronaut_bgr(astronaut_rgb) -> np.ndarray:
    return cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2BGR)
