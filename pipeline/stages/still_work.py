"""The inference stage's path for still images (items marked ``stills`` by capture, e.g. an image folder).

Every face of a still is embedded and decided on its own
(:func:`~facestream.pipeline.recognition.stills.decide_faces`, the same decision as ``facestream identify``),
against the running recognizer's gallery and threshold: no tracker, no scheduler, nothing carried from one
image to the next. A face gets ``identity`` (the name, or ``unknown``: a still gives no second look, so no
anonymous ``unknown#N`` id is handed out) and ``similarity``; it has no ``track``. Each named face also gets
an ``identified`` event (``track_id`` = the face's index in the image, a ``track_ref`` of its own) and a
gallery sighting, so an operator can reject a wrong name as in video. No ``track_started``/``track_ended``
events, no best-shot crop (the result's ``file`` names the photo).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..recognition.events import EventKind, TrackEvent, make_track_ref, new_event
from ..recognition.identity import Identity
from ..recognition.stills import decide_faces, face_side
from ..recognition.stream_recognizer import StreamRecognizer
from ..records import FaceRecord

UNKNOWN = "unknown"


def identify_stills(recognizer: StreamRecognizer, embed: Callable[[np.ndarray], np.ndarray],
                    frames: Sequence[tuple[str, int, int]], faces: Sequence[Sequence[object]],
                    records: list[list[FaceRecord]]) -> list[list[TrackEvent]]:
    """Name every face of each still (``frames``: stream, seq, capture ns; ``faces`` with ``chip``), in place
    on ``records`` (source-pixel records of the same faces); returns each still's ``identified`` events."""
    chips = [f.chip for per in faces for f in per]  # type: ignore[attr-defined]
    events: list[list[TrackEvent]] = [[] for _ in frames]
    if not chips:
        return events
    recognizer.refresh_gallery()
    embeddings = np.asarray(embed(np.stack(chips)), np.float32)
    # Face sizes from the records' source-pixel boxes (what the size-aware threshold was calibrated on): a
    # photo enlarged for the detector shows no more detail than its own pixels hold.
    decisions = decide_faces(recognizer.matcher, embeddings, [face_side(r.box) for per in records for r in per])
    row = 0
    for k, (stream, seq, ts_ns) in enumerate(frames):
        for i, record in enumerate(records[k]):
            d = decisions[row]
            records[k][i] = record.with_still_identity(d.name or UNKNOWN, d.similarity)
            if d.name is not None:
                events[k].append(_identified(recognizer, stream, seq, ts_ns, i, d.name, d.similarity,
                                             embeddings[row]))
            row += 1
    return events


def _identified(recognizer: StreamRecognizer, stream: str, seq: int, ts_ns: int, index: int, name: str,
                similarity: float | None, embedding: np.ndarray) -> TrackEvent:
    ref = make_track_ref(stream, index, seq, ts_ns)
    who = Identity(name, name=name, score=similarity)
    event = new_event(EventKind.IDENTIFIED, stream, index, ref, seq, ts_ns, ts_ns, who=who)
    if recognizer.gallery is not None:
        recognizer.gallery.record_sighting(event.event_id, ref, stream, ts_ns, embedding, name=name, score=similarity)
    return event
