"""Typed records of the stage data that travels in an item's ``meta`` map (docs/protocol.md, "Item meta").

:class:`ItemMeta` is the whole map: what capture stamps (``policy``, ``epoch``), what preprocess adds
(``scale``, ``src_shape``), what inference finds (``faces``: :class:`FaceRecord`, ``events``:
:class:`EventRecord`) and what end of stream reports (``frames_total``, ``error``). ``from_meta`` is the
receiving side: it validates every field (type, range, length, allowed characters) and raises the wire's own
rejection, :class:`~facestream.pipeline.wire_checks.WireError` with a reason (``bad_meta``, ``bad_face``,
``bad_event``), so a bad field from a peer is counted and dropped by the receiving stage, never a crash.

Coordinates: boxes and landmarks are in source pixels. ``scale`` (source -> the pixels of the frame that
travels with the item) sits beside them; :func:`~facestream.engines.faces.boxes.to_source` (re-exported
here) is the one place where detector-frame coordinates become source ones, :meth:`FaceRecord.box_in` the
way back for drawing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from facestream.engines.faces.boxes import to_source

from .recognition.events import EventKind
from .wire_checks import (
    ID_RE,
    INT64_MAX,
    STREAM_ID_RE,
    WireError,
    check_float,
    check_int,
    check_list,
    check_text,
    optional,
)

LOSSLESS = "lossless"
LATEST = "latest"
POLICIES = (LOSSLESS, LATEST)
MAX_DIM = 16384
MAX_COORD = 4.0 * MAX_DIM  # a box may reach past the frame edge, not to infinity
MAX_FACES = 1024
MAX_EVENTS = 1024
MAX_LANDMARKS = 68
MAX_NAME = 256
MAX_ERROR = 500
MAX_PATH = 4096
MAX_CROP_BYTES = 256 << 10  # a best shot is an aligned face chip: ~10 KiB as JPEG; anything far larger is not one
MAX_FILE_NAME = 255
MIN_SCALE, MAX_SCALE = 1e-5, 16.0
MAX_SCORE = 1e3
EVENT_KINDS = frozenset(k.value for k in EventKind)

BAD_META, BAD_FACE, BAD_EVENT = "bad_meta", "bad_face", "bad_event"


def finite_or_none(v: float | None, digits: int = 4) -> float | None:
    """JSON has no infinities: a score that does not exist (an empty gallery) is null."""
    if v is None or not math.isfinite(v):
        return None
    return round(float(v), digits)


def _map(v: Any, what: str, reason: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise WireError(reason, f"{what} is not a map")
    return v


def _required(d: dict[str, Any], key: str, what: str, reason: str) -> Any:
    if key not in d:
        raise WireError(reason, f"{what}.{key} is missing")
    return d[key]


@dataclass(frozen=True)
class FaceRecord:
    """One detected face in source pixels, with what tracking and recognition said about it."""

    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    score: float
    quality: float
    landmarks: tuple[tuple[float, float], ...] = ()
    track: int | None = None
    embedded: bool = False  # an embedding was computed for it in this frame
    identity: str | None = None  # a name, "unknown#N" or "unknown"
    similarity: float | None = None  # gallery mode: cosine score of the decision (null: no gallery)
    confidence: float | None = None  # classifier mode: the classifier's probability

    @classmethod
    def detected(cls, box: Sequence[float], score: float, quality: float, landmarks: Iterable[Sequence[float]],
                 scale: float) -> FaceRecord:
        """A detection in detector-frame pixels (the frame is ``scale`` x source) as a source-pixel record."""
        x1, y1, x2, y2 = to_source(box, scale)
        return cls((x1, y1, x2, y2), round(float(score), 4), round(float(quality), 3),
                   tuple((p[0], p[1]) for p in (to_source(xy, scale) for xy in landmarks)))

    def with_track(self, track: int, embedded: bool, identity: str | None, similarity: float | None) -> FaceRecord:
        return replace(self, track=track, embedded=embedded, identity=identity,
                       similarity=finite_or_none(similarity) if identity is not None else None)

    def with_still_identity(self, identity: str, similarity: float | None) -> FaceRecord:
        """A face of a still image, embedded and decided on its own (no track)."""
        return replace(self, embedded=True, identity=identity, similarity=finite_or_none(similarity))

    def with_label(self, identity: str, confidence: float) -> FaceRecord:
        return replace(self, identity=identity, confidence=round(float(confidence), 4))

    def box_in(self, scale: float) -> tuple[int, int, int, int]:
        """The box in the pixels of a frame that is ``scale`` x source (for drawing on it)."""
        x1, y1, x2, y2 = (int(round(v * scale)) for v in self.box)
        return x1, y1, x2, y2

    @property
    def known(self) -> bool:
        return bool(self.identity) and not str(self.identity).startswith("unknown")

    def to_meta(self) -> dict[str, Any]:
        d: dict[str, Any] = {"box": list(self.box), "score": self.score, "quality": self.quality,
                             "landmarks": [list(p) for p in self.landmarks]}
        if self.track is not None:
            d["track"] = self.track
        if self.embedded:
            d["embedded"] = True
        if self.identity is not None:
            d["identity"] = self.identity
            if self.confidence is not None:
                d["confidence"] = self.confidence
            else:
                d["similarity"] = self.similarity
        return d

    @classmethod
    def from_meta(cls, v: Any, what: str = "face") -> FaceRecord:
        d = _map(v, what, BAD_FACE)
        box = check_list(_required(d, "box", what, BAD_FACE), what + ".box", BAD_FACE, 4)
        if len(box) != 4:
            raise WireError(BAD_FACE, f"{what}.box has {len(box)} numbers, not 4")
        x1, y1, x2, y2 = (check_float(c, what + ".box", BAD_FACE, -MAX_COORD, MAX_COORD) for c in box)
        if x2 < x1 or y2 < y1:
            raise WireError(BAD_FACE, f"{what}.box is inverted")
        marks = []
        for p in check_list(d.get("landmarks", []), what + ".landmarks", BAD_FACE, MAX_LANDMARKS):
            if not isinstance(p, list) or len(p) != 2:
                raise WireError(BAD_FACE, f"{what}.landmarks entry is not [x, y]")
            marks.append(tuple(check_float(c, what + ".landmarks", BAD_FACE, -MAX_COORD, MAX_COORD) for c in p))
        embedded = d.get("embedded", False)
        if not isinstance(embedded, bool):
            raise WireError(BAD_FACE, f"{what}.embedded is not a boolean")
        return cls(
            box=(x1, y1, x2, y2),
            score=check_float(_required(d, "score", what, BAD_FACE), what + ".score", BAD_FACE, -MAX_SCORE, MAX_SCORE),
            quality=check_float(d.get("quality", 0.0), what + ".quality", BAD_FACE, -MAX_SCORE, MAX_SCORE),
            landmarks=tuple(marks),  # type: ignore[arg-type]
            track=optional(check_int, d.get("track"), what + ".track", BAD_FACE),
            embedded=embedded,
            identity=optional(check_text, d.get("identity"), what + ".identity", BAD_FACE, MAX_NAME),
            similarity=optional(check_float, d.get("similarity"), what + ".similarity", BAD_FACE, -MAX_SCORE,
                                MAX_SCORE),
            confidence=optional(check_float, d.get("confidence"), what + ".confidence", BAD_FACE, -MAX_SCORE,
                                MAX_SCORE),
        )


@dataclass(frozen=True)
class EventRecord:
    """A track event (recognition/events.py ``TrackEvent``) as it travels and as the sink stores it."""

    event_id: str
    kind: str
    stream_id: str
    track_id: int
    track_ref: str
    seq: int
    ts_ns: int
    first_ts_ns: int
    identity: str | None = None
    name: str | None = None
    unknown_id: int | None = None
    score: float | None = None
    confidence: float | None = None
    best_shot_path: str | None = None
    previous_identity: str | None = None
    dwell_seconds: float | None = None
    best_shot_jpeg: bytes | None = None  # inference -> sink only: the sink writes it and drops it from the record

    @classmethod
    def from_event(cls, event: Any) -> EventRecord:
        """From a recognition TrackEvent: floats rounded, non-finite ones (no gallery) null."""
        d = event.to_dict()
        return cls(**{k: finite_or_none(v) if isinstance(v, float) else v for k, v in d.items()})

    def to_meta(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        if d["best_shot_jpeg"] is None:
            del d["best_shot_jpeg"]  # stored records (events files, the store, integrations) carry no pixels
        return d

    @classmethod
    def from_meta(cls, v: Any, what: str = "event") -> EventRecord:
        d = _map(v, what, BAD_EVENT)

        def req(key: str) -> Any:
            return _required(d, key, what, BAD_EVENT)

        def name(key: str) -> str | None:
            return optional(check_text, d.get(key), f"{what}.{key}", BAD_EVENT, MAX_NAME)

        def number(key: str, lo: float, hi: float) -> float | None:
            return optional(check_float, d.get(key), f"{what}.{key}", BAD_EVENT, lo, hi)

        kind = check_text(req("kind"), what + ".kind", BAD_EVENT, 32)
        if kind not in EVENT_KINDS:
            raise WireError(BAD_EVENT, f"{what}.kind {kind!r} is not an event kind")
        return cls(
            event_id=check_text(req("event_id"), what + ".event_id", BAD_EVENT, 64, ID_RE),
            kind=kind,
            stream_id=check_text(req("stream_id"), what + ".stream_id", BAD_EVENT, 128, STREAM_ID_RE),
            track_id=check_int(req("track_id"), what + ".track_id", BAD_EVENT),
            track_ref=check_text(req("track_ref"), what + ".track_ref", BAD_EVENT, 64, ID_RE),
            seq=check_int(req("seq"), what + ".seq", BAD_EVENT),
            ts_ns=check_int(req("ts_ns"), what + ".ts_ns", BAD_EVENT),
            first_ts_ns=check_int(req("first_ts_ns"), what + ".first_ts_ns", BAD_EVENT),
            identity=name("identity"),
            name=name("name"),
            unknown_id=optional(check_int, d.get("unknown_id"), what + ".unknown_id", BAD_EVENT),
            score=number("score", -MAX_SCORE, MAX_SCORE),
            confidence=number("confidence", -MAX_SCORE, MAX_SCORE),
            best_shot_path=optional(check_text, d.get("best_shot_path"), what + ".best_shot_path", BAD_EVENT,
                                    MAX_PATH),
            previous_identity=name("previous_identity"),
            dwell_seconds=number("dwell_seconds", 0.0, 1e9),
            best_shot_jpeg=_crop_bytes(d.get("best_shot_jpeg"), what + ".best_shot_jpeg"),
        )


def _crop_bytes(v: Any, what: str) -> bytes | None:
    """A best shot from a peer: JPEG bytes of bounded size, or nothing."""
    if v is None:
        return None
    if not isinstance(v, bytes) or not 0 < len(v) <= MAX_CROP_BYTES or not v.startswith(b"\xff\xd8"):
        raise WireError(BAD_EVENT, f"{what} is not a JPEG of at most {MAX_CROP_BYTES >> 10} KiB")
    return v


@dataclass
class ItemMeta:
    """An item's ``meta`` map, typed. Absent fields are None (and are not sent)."""

    policy: str | None = None  # capture: "lossless" (wait for the hop) or "latest" (drop when full)
    epoch: int | None = None  # capture: wall ns when this capture process started (a restart is a new epoch)
    scale: float | None = None  # preprocess: pixels of the travelling frame per source pixel
    src_shape: tuple[int, int] | None = None  # preprocess: source frame height, width
    faces: list[FaceRecord] | None = None  # inference: faces in source pixels (None: not inferred)
    events: list[EventRecord] = field(default_factory=list)  # inference: track events (results and eos)
    frames_total: int | None = None  # eos: frames the stream had
    error: str | None = None  # eos: why the source ended, if it failed
    stills: bool | None = None  # capture: the item is a still image, identified on its own (no tracking)
    file: str | None = None  # capture: the still's file name inside its folder
    frames_expected: int | None = None  # capture: frames the source says it has (a file's length; progress)

    @property
    def lossless(self) -> bool:
        return self.policy == LOSSLESS

    def to_meta(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for key in ("policy", "epoch", "stills", "file", "frames_expected", "scale"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        if self.src_shape is not None:
            d["src_shape"] = list(self.src_shape)
        if self.faces is not None:
            d["faces"] = [f.to_meta() for f in self.faces]
        if self.events:
            d["events"] = [e.to_meta() for e in self.events]
        if self.frames_total is not None:
            d["frames_total"] = self.frames_total
        if self.error is not None:
            d["error"] = self.error
        return d

    @classmethod
    def from_meta(cls, v: Any, what: str = "meta") -> ItemMeta:
        """Validate a received meta map; unknown keys are ignored (and not forwarded)."""
        d = _map(v, what, BAD_META)
        policy = d.get("policy")
        if policy is not None and policy not in POLICIES:
            raise WireError(BAD_META, f"{what}.policy {str(policy)[:20]!r} is not one of {POLICIES}")
        src_shape = d.get("src_shape")
        if src_shape is not None:
            src_shape = check_list(src_shape, what + ".src_shape", BAD_META, 2)
            if len(src_shape) != 2:
                raise WireError(BAD_META, f"{what}.src_shape is not [height, width]")
            src_shape = tuple(check_int(s, what + ".src_shape", BAD_META, 1, MAX_DIM) for s in src_shape)
        faces = d.get("faces")
        if faces is not None:
            faces = [FaceRecord.from_meta(f, f"{what}.faces[{i}]")
                     for i, f in enumerate(check_list(faces, what + ".faces", BAD_FACE, MAX_FACES))]
        events = [EventRecord.from_meta(e, f"{what}.events[{i}]")
                  for i, e in enumerate(check_list(d.get("events", []), what + ".events", BAD_EVENT, MAX_EVENTS))]
        stills = d.get("stills")
        if stills is not None and not isinstance(stills, bool):
            raise WireError(BAD_META, f"{what}.stills is not a boolean")
        return cls(
            policy=policy,
            epoch=optional(check_int, d.get("epoch"), what + ".epoch", BAD_META, 0, INT64_MAX),
            stills=stills,
            file=optional(check_text, d.get("file"), what + ".file", BAD_META, MAX_FILE_NAME),
            frames_expected=optional(check_int, d.get("frames_expected"), what + ".frames_expected", BAD_META),
            scale=optional(check_float, d.get("scale"), what + ".scale", BAD_META, MIN_SCALE, MAX_SCALE),
            src_shape=src_shape,  # type: ignore[arg-type]
            faces=faces,
            events=events,
            frames_total=optional(check_int, d.get("frames_total"), what + ".frames_total", BAD_META),
            error=optional(check_text, d.get("error"), what + ".error", BAD_META, MAX_ERROR, printable=False),
        )
