"""Progress lines on the terminal, written by the sink (it sees every result): one line per stream.

For a file or folder (``frames_expected`` known): ``facestream: video 52/105 frames (50%), 12.3 fps, 40
faces, 2 identities: Alice, Bob`` every ``interval_s`` and once at its end; for a live source (policy
``latest``) or one of unknown length, a status line every ``LIVE_FACTOR`` x ``interval_s``. Always on stderr:
stdout is for results (``--stdout json``). Cheap: counters per result, one formatted line per interval.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from ..records import LATEST, ItemMeta

LIVE_FACTOR = 5
MAX_NAMES = 5


@dataclass
class StreamProgress:
    started: float
    frames: int = 0
    faces: int = 0
    expected: int | None = None
    live: bool = False
    names: dict[str, int] = field(default_factory=dict)  # name -> frames (or photos) it was named in
    last_line: float = 0.0


class ProgressReporter:
    def __init__(self, interval_s: float, out: TextIO | None = None, clock: Callable[[], float] = time.monotonic):
        self.interval_s = interval_s
        self.out = out
        self.clock = clock
        self.streams: dict[str, StreamProgress] = {}

    def result(self, stream: str, meta: ItemMeta) -> None:
        """Count one frame result; print the stream's line when its interval has passed."""
        now = self.clock()
        p = self.streams.get(stream)
        if p is None:
            p = self.streams[stream] = StreamProgress(started=now, last_line=now)
        p.frames += 1
        p.faces += len(meta.faces or [])
        p.expected = meta.frames_expected if meta.frames_expected is not None else p.expected
        p.live = meta.policy == LATEST
        for name in {f.identity for f in meta.faces or [] if f.known}:
            p.names[name] = p.names.get(name, 0) + 1  # type: ignore[index]
        every = self.interval_s * (LIVE_FACTOR if p.live or p.expected is None else 1)
        if now - p.last_line >= every:
            self._write(stream, p, now)

    def ended(self, stream: str) -> None:
        p = self.streams.get(stream)
        if p is not None:
            self._write(stream, p, self.clock(), ended=True)

    def line(self, stream: str, now: float | None = None, ended: bool = False) -> str:
        p = self.streams[stream]
        now = self.clock() if now is None else now
        fps = (p.frames - 1) / (now - p.started) if p.frames > 1 and now > p.started else 0.0
        if p.expected and not p.live:
            done = f"{p.frames}/{p.expected} frames ({100 * p.frames // max(p.expected, 1)}%)"
        else:
            done = f"{'live, ' if p.live else ''}{p.frames} frames"
        names = sorted(p.names, key=lambda n: (-p.names[n], n))
        who = f"{len(names)} identit{'y' if len(names) == 1 else 'ies'}"
        if names:
            who += ": " + ", ".join(names[:MAX_NAMES]) + (f" +{len(names) - MAX_NAMES} more" if len(names) > MAX_NAMES
                                                          else "")
        return f"facestream: {stream} {done}, {fps:.1f} fps, {p.faces} faces, {who}{', done' if ended else ''}"

    def _write(self, stream: str, p: StreamProgress, now: float, ended: bool = False) -> None:
        p.last_line = now
        out = self.out or sys.stderr
        try:
            out.write(self.line(stream, now, ended) + "\n")
            out.flush()
        except (OSError, ValueError):
            pass  # a closed terminal must not stop the sink
