"""Per-track events for sinks: started, identified, identity_changed, ended.

Ids are derived from the input, not from clocks or counters kept across runs: a track's ``track_ref`` hashes
(stream id, tracker id, first frame seq, first capture timestamp) and an event id hashes (track_ref, kind,
seq). Replaying the same frames therefore yields the same ids, and a sink can drop duplicates by id.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields
from enum import Enum
from typing import Any

from .identity import HasIdentity, Identity, identity_fields


class EventKind(str, Enum):
    STARTED = "track_started"
    IDENTIFIED = "identified"
    IDENTITY_CHANGED = "identity_changed"
    ENDED = "track_ended"


def _digest(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:16]


def make_track_ref(stream_id: str, track_id: int, first_seq: int, first_ts_ns: int) -> str:
    """Stable id of one track across processes and replays, e.g. ``t-3f09a1c2b4d5e6f7``."""
    return "t-" + _digest(stream_id, track_id, first_seq, first_ts_ns)


def make_event_id(track_ref: str, kind: EventKind, seq: int) -> str:
    return "e-" + _digest(track_ref, kind.value, seq)


@dataclass(frozen=True)
class TrackEvent(HasIdentity):
    """One event. ``who`` is None when started/ended before any decision; ``identity`` is its label."""

    event_id: str
    kind: EventKind
    stream_id: str
    track_id: int
    track_ref: str
    seq: int
    ts_ns: int
    first_ts_ns: int
    who: Identity | None = None
    best_shot_path: str | None = None
    previous_identity: str | None = None
    dwell_seconds: float | None = None
    best_shot_jpeg: bytes | None = None  # the best shot itself, for the sink to store (crops kept centrally)

    def to_dict(self) -> dict[str, Any]:
        """The wire form: flat fields in declaration order, ``who`` as its five fields."""
        d: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "who":
                d.update(identity_fields(self.who))
            else:
                d[f.name] = getattr(self, f.name)
        d["kind"] = self.kind.value
        return d


def new_event(
    kind: EventKind,
    stream_id: str,
    track_id: int,
    track_ref: str,
    seq: int,
    ts_ns: int,
    first_ts_ns: int,
    **fields: object,
) -> TrackEvent:
    return TrackEvent(
        event_id=make_event_id(track_ref, kind, seq),
        kind=kind,
        stream_id=stream_id,
        track_id=track_id,
        track_ref=track_ref,
        seq=seq,
        ts_ns=ts_ns,
        first_ts_ns=first_ts_ns,
        **fields,  # type: ignore[arg-type]
    )
