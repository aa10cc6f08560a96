"""Event dicts as the sink hands them to the integrations (EventRecord.to_meta())."""

from __future__ import annotations

import time
from typing import Any

from facestream.pipeline.records import EventRecord

T0 = 1_714_564_800_000_000_000  # 2024-05-01T12:00:00Z


def event(seq: int, kind: str = "track_started", name: str | None = None, stream: str = "cam1",
          ts_ns: int | None = None) -> dict[str, Any]:
    named = kind != "track_started" and name is not None
    return EventRecord(
        event_id=f"e-{stream}-{kind}-{seq}", kind=kind, stream_id=stream, track_id=1, track_ref="t-1", seq=seq,
        ts_ns=ts_ns if ts_ns is not None else T0 + seq * 1_000_000, first_ts_ns=T0,
        identity=name if named else None, name=name if named else None,
        score=0.91 if named else None, confidence=0.8 if named else None,
        dwell_seconds=1.5 if kind == "track_ended" else None,
    ).to_meta()


def now_event(seq: int, **kw: Any) -> dict[str, Any]:
    return event(seq, ts_ns=time.time_ns(), **kw)
