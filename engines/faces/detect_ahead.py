"""Detection of the next batch while the current one is described, embedded and recognised.

The inference stage's work on a batch is a chain: detect (on the detector's threads) -> landmarks, chips,
embedding and recognition (on the stage's thread). Run one after the other, the detector threads wait while
the stage thread works and the stage thread waits while they detect: on a 2-core box with two live cameras
about a sixth of the CPU stayed idle. :class:`DetectAhead` starts the regions detector on the next batch
(the oldest queued frames, which the stage processes next) as soon as the current batch's faces are found,
so both run at once. The pipeline leaves it off by default (``inference.detect_ahead``): on 2 cores it always
added about a frame of latency and its throughput gain did not hold across runs (docs/detection.md).

A stream's planner learns from each frame in turn, so at most one batch is detected ahead and the regions
detector is never entered twice at once. Frames detected ahead wait for the batch that holds them; one
replaced by a newer frame of its stream while queued is discarded when its stream moves past it: the planner
then saw a frame that was not reported, which only moves it on in time.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from .detector import Detection
from .region_detector import RegionDetector

Key = tuple[str, int]  # (stream, seq) of a frame


class DetectAhead:
    def __init__(self, regions: RegionDetector):
        self.regions = regions
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="detect-ahead")
        self._ahead: tuple[tuple[Key, ...], Future] | None = None
        self._done: dict[Key, list[Detection]] = {}  # detected ahead, not yet asked for
        self.used = 0  # frames detected ahead and then used
        self.discarded = 0  # frames detected ahead that were never asked for (replaced while queued)

    def start(self, keys: list[Key], frames: list[tuple[str, np.ndarray]]) -> bool:
        """Begin detecting these frames (``keys`` name them); False when a batch is already ahead or every
        frame was already detected ahead."""
        todo = [i for i, k in enumerate(keys) if k not in self._done]
        if self._ahead is not None or not todo:
            return False
        self._ahead = (tuple(keys[i] for i in todo), self._pool.submit(self.regions.detect_frames,
                                                                      [frames[i] for i in todo]))
        return True

    def detect(self, keys: list[Key], frames: list[tuple[str, np.ndarray]]) -> list[list[Detection]]:
        """Faces in each frame: those detected ahead taken from there, the others detected now (after them:
        frames ahead are a stream's oldest queued ones, so a stream's frames still reach its planner in
        order). Frames detected ahead that this batch does not hold stay for a later one; those of a stream
        this batch moves past are discarded. An error detecting ahead is raised here, in the stage's thread
        where a failing batch is counted, when the batch ahead shares a frame with this one."""
        self._collect(raise_for=set(keys))
        known = {k: self._done.pop(k) for k in keys if k in self._done}
        self.used += len(known)
        streams = {k[0] for k in keys}
        for k in [k for k in self._done if k[0] in streams]:
            del self._done[k]
            self.discarded += 1
        rest = [i for i, k in enumerate(keys) if k not in known]
        out = [known.get(k, []) for k in keys]
        for i, found in zip(rest, self.regions.detect_frames([frames[i] for i in rest]) if rest else [],
                            strict=True):
            out[i] = found
        return out

    def _collect(self, raise_for: set[Key]) -> None:
        """Wait for the batch ahead (the regions detector is entered by one thread at a time) and keep what it
        found; its error is raised only when it shares a frame with ``raise_for``."""
        ahead, self._ahead = self._ahead, None
        if ahead is None:
            return
        keys, future = ahead
        if future.exception() is not None:
            if raise_for.intersection(keys):
                future.result()
            return  # another batch's frames: detected again when their batch comes
        self._done.update(zip(keys, future.result(), strict=True))

    def settle(self, stream: str | None = None) -> None:
        """Wait for the batch ahead, if any: the regions detector is idle afterwards (before a stream's planner
        is dropped). What was detected ahead for ``stream`` (every stream: None) is forgotten."""
        self._collect(raise_for=set())
        for k in [k for k in self._done if stream is None or k[0] == stream]:
            del self._done[k]
            self.discarded += 1

    def close(self) -> None:
        self.settle()
        self._pool.shutdown(wait=True)
