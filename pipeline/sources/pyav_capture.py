"""A VideoCapture-shaped reader (isOpened/read/release) over PyAV, for rtsp/http streams.

Preferred over OpenCV for live URLs when PyAV is installed: OpenCV rescales every frame to the size the
stream had when it was opened (a camera that switches resolution mid-stream then yields distorted frames
and the change is invisible), and takes FFmpeg options only from a process-wide environment variable.
PyAV returns each frame at its real size and takes options and open/read timeouts per container.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator

import numpy as np

_MAX_BAD_PACKETS = 50  # consecutive undecodable packets before the connection counts as broken


def pyav_available() -> bool:
    return importlib.util.find_spec("av") is not None


class PyAVCapture:
    def __init__(self, url: str, options: dict[str, str], open_timeout_s: float, read_timeout_s: float,
                 on_decode_error: Callable[[], None] = lambda: None,
                 on_skipped: Callable[[int], None] = lambda n: None) -> None:
        import av

        self._av = av
        self._on_decode_error = on_decode_error
        self._on_skipped = on_skipped
        # Read before each packet: True = the decoder skips non-reference frames (sources/decode_pace.py).
        self.skip_nonref: Callable[[], bool] = lambda: False
        self.error: str | None = None
        self._container = None
        self._frames: Iterator[np.ndarray] | None = None
        try:
            self._container = av.open(url, options=options, timeout=(open_timeout_s, read_timeout_s))
            if not self._container.streams.video:
                raise ValueError("no video stream")
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            self.error = str(exc)
            self.release()
            return
        self._frames = self._decode(self._container.streams.video[0])

    def _decode(self, stream) -> Iterator[np.ndarray]:  # noqa: ANN001 (av.VideoStream)
        bad = 0
        skipping = False
        for packet in self._container.demux(stream):
            if self.skip_nonref() != skipping:
                skipping = not skipping
                stream.codec_context.skip_frame = "NONREF" if skipping else "DEFAULT"
            try:
                frames = packet.decode()
            except self._av.error.InvalidDataError:
                bad += 1
                self._on_decode_error()
                if bad > _MAX_BAD_PACKETS:
                    return
                continue
            bad = 0
            if skipping and not frames and packet.size:
                self._on_skipped(1)
            for frame in frames:
                yield frame.to_ndarray(format="bgr24")

    def isOpened(self) -> bool:  # noqa: N802 (cv2.VideoCapture's name)
        return self._frames is not None

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self._frames is None:
            return False, None
        try:
            return True, next(self._frames)
        except (StopIteration, self._av.error.FFmpegError, OSError) as exc:
            self.error = str(exc) or "end of stream"
            self._frames = None
            return False, None

    def release(self) -> None:
        container, self._container = self._container, None
        self._frames = None
        if container is not None:
            try:
                container.close()
            except self._av.error.FFmpegError:
                pass
