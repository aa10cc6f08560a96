"""What :class:`~.stream_recognizer.StreamRecognizer` returns for each frame: a result per face, the events."""

from __future__ import annotations

from dataclasses import dataclass

from .events import TrackEvent
from .identity import HasIdentity, Identity


@dataclass(frozen=True)
class TrackResult(HasIdentity):
    face_index: int
    track_id: int
    track_ref: str
    confirmed: bool
    embedded: bool
    who: Identity | None = None  # None: not decided yet


@dataclass
class FrameResult:
    stream_id: str
    seq: int
    ts_ns: int
    tracks: list[TrackResult]
    events: list[TrackEvent]
