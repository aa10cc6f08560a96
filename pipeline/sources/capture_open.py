"""Opening a capture for a live source, with per-camera FFmpeg options and open/read timeouts.

RTSP/HTTP use PyAV when it is installed (``decoder: auto``): it gives each frame at its real size, so a
mid-stream resolution change is seen and counted, and takes options and timeouts per container. Without
PyAV (or with ``decoder: opencv``) OpenCV's FFmpeg backend is used: its open/read timeouts
(CAP_PROP_OPEN_TIMEOUT_MSEC / CAP_PROP_READ_TIMEOUT_MSEC) are enforced by FFmpeg's interrupt callback too,
but it rescales frames to the stream's first size, and FFmpeg options such as ``rtsp_transport`` come from
the process-wide environment variable OPENCV_FFMPEG_CAPTURE_OPTIONS, read during open: ``_OptionsGate``
makes opens that need different options take turns, while opens with the same options run concurrently.
Webcams always use OpenCV (V4L2).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import cv2

from facestream.errors import FacestreamError

from .config import SourceConfig, webcam_index
from .metrics import DECODE_ERRORS, SKIPPED_NONREF
from .pyav_capture import PyAVCapture, pyav_available

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


def uses_pyav(cfg: SourceConfig) -> bool:
    """Whether this source is read with PyAV (rtsp/http with decoder pyav, or auto and PyAV installed)."""
    if cfg.kind not in ("rtsp", "http") or cfg.decoder == "opencv":
        return False
    if cfg.decoder == "pyav" and not pyav_available():
        raise FacestreamError(f"source {cfg.id!r}: decoder pyav needs PyAV (pip install av), or set decoder: opencv")
    return pyav_available()


def open_live_capture(cfg: SourceConfig) -> cv2.VideoCapture | PyAVCapture:
    """A capture for a webcam, RTSP or HTTP source (may come back not opened; the caller checks)."""
    if cfg.kind == "webcam":
        backend = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
        return cv2.VideoCapture(webcam_index(cfg.uri), backend)
    if uses_pyav(cfg):
        options = {"rtsp_transport": cfg.rtsp_transport} if cfg.kind == "rtsp" else {}
        options.update(cfg.ffmpeg_options)
        return PyAVCapture(cfg.uri, options, cfg.open_timeout_s, cfg.read_timeout_s,
                           on_decode_error=DECODE_ERRORS.labels(cfg.id).inc,
                           on_skipped=SKIPPED_NONREF.labels(cfg.id).inc)
    params = [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(cfg.open_timeout_s * 1000),
        cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(cfg.read_timeout_s * 1000),
    ]
    with _GATE.holding(ffmpeg_options(cfg)):
        return cv2.VideoCapture(cfg.uri, cv2.CAP_FFMPEG, params)
