"""Best shots that arrive with their events: the sink writes them under its own ``out_dir/crops``.

Inference may run on another host; its crops would otherwise stay on that host's disk while the events that
name them are here. The file name is the sink's own (stream id and track ref are validated on receipt), never
a path from the peer. A write that fails is counted and the event is kept without a crop.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from facestream.fsutil import atomic_write

from .. import metrics as m
from ..recognition.best_shots import best_shot_file
from ..records import EventRecord


def store_crop(out_dir: Path, record: EventRecord, keep: bool, log: logging.Logger) -> EventRecord:
    """``record`` without its JPEG bytes; with ``best_shot_path`` where the sink wrote them (None when not kept
    or not written). ``keep`` is ``sink.crops``."""
    if record.best_shot_jpeg is None:
        return record
    path: str | None = None
    if keep:
        target = best_shot_file(out_dir / "crops", record.stream_id, record.track_ref)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(target, record.best_shot_jpeg)
            path = str(target)
            m.SINK_EVENTS.labels("crop").inc()
        except OSError as exc:
            m.SINK_WRITE_ERRORS.labels("crop").inc()
            log.warning("sink: cannot write the best shot %s: %s", target, exc)
    return replace(record, best_shot_jpeg=None, best_shot_path=path)
