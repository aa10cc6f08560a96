"""Detection of the next batch while the current one is described, embedded and recognised.

The inference stage's work on a batch is a chain: detect (on the detector's threads) -> landmarks, chips,
embedding and recognition (on the stage's thread). Run one after the other, the detector threads wait while
the stage thread works and the stage thread waits while they detect: on a 2-core box with two live cameras
about a sixth of the CPU stayed idle. :class:`DetectAhead` starts the regions detector on the next batch
(the oldest queued frames, which the stage processes next) as soon as the current batch's faces are found,
so both run at once.

A stream's planner learns from each frame in turn, so at most one batch is detected ahead and the regions
detector is never entered twice at once. A batch detected ahead whose frames were not the next processed
(a live frame replaced by a newer one while queued) is discarded: the planner then saw a frame that was
not reported, which only moves it on in time.
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
        self.used = 0  # frames detected ahead and then used
        self.discarded = 0  # frames detected ahead that were not processed next (replaced while queued)

    def start(self, keys: list[Key], frames: list[tuple[str, np.ndarray]]) -> bool:
        """Begin detecting these frames (``keys`` name them); False when a batch is already ahead."""
        if self._ahead is not None or not frames:
            return False
        self._ahead = (tuple(keys), self._pool.submit(self.regions.detect_frames, frames))
        return True

    def detect(self, keys: list[Key], frames: list[tuple[str, np.ndarray]]) -> list[list[Detection]]:
        """Faces in each frame: those detected ahead taken from there, the others detected now (after them:
        a batch ahead holds the oldest queued frames, so a stream's frames still reach its planner in order).
        An error detecting ahead is raised here, in the stage's thread where a failing batch is counted, when
        the batch ahead shares a frame with this one."""
        ahead, self._ahead = self._ahead, None
        known: dict[Key, list[Detection]] = {}
        if ahead is not None:
            wanted = set(keys)
            if wanted.isdisjoint(ahead[0]):
                ahead[1].exception()  # wait: the regions detector is entered by one thread at a time
            else:
                known = dict(zip(ahead[0], ahead[1].result(), strict=True))
            self.used += sum(k in wanted for k in ahead[0])
            self.discarded += sum(k not in wanted for k in ahead[0])
        rest = [i for i, k in enumerate(keys) if k not in known]
        out = [known.get(k, []) for k in keys]
        for i, found in zip(rest, self.regions.detect_frames([frames[i] for i in rest]) if rest else [],
                            strict=True):
            out[i] = found
        return out

    def settle(self) -> None:
        """Wait for the batch ahead, if any, and forget it: the regions detector is idle afterwards (before a
        stream's planner is dropped)."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            self.discarded += len(ahead[0])
            ahead[1].exception()

    def close(self) -> None:
        self.settle()
        self._pool.shutdown(wait=True)
