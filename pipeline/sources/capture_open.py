"""Opening an OpenCV VideoCapture for a live source, with per-camera FFmpeg options and timeouts.

Why OpenCV's FFmpeg backend rather than PyAV: it is already a dependency (no second FFmpeg build in the
wheel set), it exposes open/read timeouts (CAP_PROP_OPEN_TIMEOUT_MSEC / CAP_PROP_READ_TIMEOUT_MSEC, enforced
by FFmpeg's interrupt callback, so a blocked read does return), and file and live sources share one decoder.
Its one awkward part is that FFmpeg options such as ``rtsp_transport`` come from the process-wide
environment variable OPENCV_FFMPEG_CAPTURE_OPTIONS, read during open; ``_OptionsGate`` makes opens that need
different options take turns, while opens with the same options (the usual case) run concurrently.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import cv2

from .config import SourceConfig, webcam_index

_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
_USER_OPTIONS = os.environ.get(_ENV, "")  # options the operator set for every capture; ours are added


class _OptionsGate:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._current: str | None = None
        self._active = 0

    @contextmanager
    def holding(self, options: str) -> Iterator[None]:
        with self._cond:
            while self._active and self._current != options:
                self._cond.wait()
            self._current = options
            self._active += 1
            os.environ[_ENV] = options
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()


_GATE = _OptionsGate()


def ffmpeg_options(cfg: SourceConfig) -> str:
    """OPENCV_FFMPEG_CAPTURE_OPTIONS for this source ("key;value|key;value")."""
    ours = [f"rtsp_transport;{cfg.rtsp_transport}"] if cfg.kind == "rtsp" else []
    ours += [f"{key};{value}" for key, value in sorted(cfg.ffmpeg_options.items())]
    return "|".join([o for o in _USER_OPTIONS.split("|") if o] + ours)


def open_live_capture(cfg: SourceConfig) -> cv2.VideoCapture:
    """A VideoCapture for a webcam, RTSP or HTTP source (may come back not opened; the caller checks)."""
    if cfg.kind == "webcam":
        backend = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
        return cv2.VideoCapture(webcam_index(cfg.uri), backend)
    params = [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(cfg.open_timeout_s * 1000),
        cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(cfg.read_timeout_s * 1000),
    ]
    with _GATE.holding(ffmpeg_options(cfg)):
        return cv2.VideoCapture(cfg.uri, cv2.CAP_FFMPEG, params)
