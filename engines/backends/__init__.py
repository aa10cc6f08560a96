"""Inference backends behind :class:`facestream.engines.runtime.InferenceModel`.

A backend takes validated feeds (name -> contiguous array) and returns outputs (name -> array).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Backend(Protocol):
    name: str

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def close(self) -> None: ...
