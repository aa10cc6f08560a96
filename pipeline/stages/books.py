"""Drop accounting of one stage: every frame it drops is counted and carried downstream.

A drop is counted in ``facestream_frames_dropped_total`` where it happens and also kept as pending until
the next item (or end of stream) of the same stream leaves the stage, which carries it in ``Item.drops``;
so the sink can account for every frame: result, dropped (by which stage and why), or lost in flight.
"""

from __future__ import annotations

import collections

from .. import metrics as m
from ..wire import Item


class DropBooks:
    def __init__(self, stage: str):
        self.stage = stage
        self.pending: dict[str, collections.Counter[tuple[str, str]]] = collections.defaultdict(collections.Counter)

    def drop(self, item: Item, reason: str) -> None:
        """This stage drops ``item``: count it, and keep the drops it was carrying."""
        self.merge(item)
        self.count(item.stream, reason)

    def count(self, stream: str, reason: str, n: int = 1) -> None:
        """``n`` frames of ``stream`` dropped here without an item to show for them (capture's stale frames)."""
        m.FRAMES_DROPPED.labels(self.stage, stream, reason).inc(n)
        self.pending[stream][(self.stage, reason)] += n

    def merge(self, item: Item) -> None:
        """Take over the drops ``item`` carries (it is dropped, or they go on with a later item)."""
        for stage, reason, count in item.drops:
            self.pending[item.stream][(str(stage), str(reason))] += int(count)
        item.drops = []

    def attach(self, item: Item) -> None:
        """Hand the stream's pending drops to ``item``, which is about to leave the stage."""
        pend = self.pending.pop(item.stream, None)
        if pend:
            item.drops = item.drops + [[s, r, c] for (s, r), c in pend.items()]
