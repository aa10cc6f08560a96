"""``StreamRecognizer``: tracking, scheduling, temporal aggregation, matching and events for many streams.

The inference stage calls it in two steps per frame, so that the faces of *all* streams that need an
embedding go through the embedder in one batch::

    rec = StreamRecognizer(gallery=Gallery(path), aggregator=make_aggregator("attention"))
    wanted = {}
    for frame in frames:                                   # frames of several streams
        idx = rec.update(frame.stream_id, frame.seq, frame.ts_ns, frame.faces)   # faces without embeddings
        wanted[frame.key] = idx                            # indices into frame.faces to embed
    chips = [frame.faces[i].chip for frame in frames for i in wanted[frame.key]]
    embeddings = embedder.embed(np.stack(chips))           # ONE engine call for everything
    results = rec.complete_many([(f.stream_id, f.seq, embeddings_of(f)) for f in frames])

(:func:`~.batch.recognise_frames` does exactly this given an ``embed`` function.) ``complete`` must be called for every
frame passed to ``update``, with an empty (0, 128) array when nothing was asked; it returns a
:class:`FrameResult`: one :class:`TrackResult` per face (same order as the faces given to ``update``) and
the frame's :class:`~facestream.pipeline.recognition.events.TrackEvent` list (results in ``results.py``; who
a track is travels as one :class:`~facestream.pipeline.recognition.identity.Identity`). Frames of one stream
must be completed in order; different streams are independent.

A face is any object with ``box`` (x1, y1, x2, y2), ``quality`` (a float or an object with ``.score``) and
optionally ``chip`` (150x150x3 RGB uint8, used for the best-shot crop): ``facestream.engines.faces``'s
``Face`` fits.

Identity of a track: after each new embedding the track's sequence is aggregated (mean / quality / GRU /
attention) and matched against the gallery. A name is accepted at once; an *unknown* track gets a persistent
anonymous id (``unknown#N``) once its best shot reaches ``unknown_min_quality``. A different identity later
must win ``change_confirmations`` decisions in a row before ``identity_changed`` is emitted (no flicker).
The gallery is re-read when it changes (``Gallery.reload_if_changed``) at most every ``reload_interval_s``.

Short tracks: a track that ends before it is confirmed (a person seen in fewer than ``n_init`` frames) is
decided at its end from its best shot (the chip of its best-quality face), embedded in the same batch as the
frame where it ended (``late_chips``; :func:`recognise_frames` does it) or at ``end_stream`` with ``embed``.
The same threshold and unknown rules apply; one it names (or gives an anonymous id) is reported as
``track_started``, ``identified`` and ``track_ended``; one too poor for either is dropped as flicker.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .best_shots import best_shot
from .events import EventKind, TrackEvent, make_track_ref, new_event
from .gallery import Gallery, GallerySnapshot
from .identity import Identity
from .matcher import DEFAULT_THRESHOLD, Matcher, MatchResult
from .recognizer_metrics import ACTIVE_TRACKS, GALLERY_PEOPLE, GALLERY_RELOADS, MATCH_SCORE, TRACK_EVENTS
from .results import FrameResult, TrackResult
from .scheduler import RecognitionScheduler, SchedulerConfig
from .temporal import Aggregator, MeanPool
from .tracker import FaceTracker, Track
from .unknowns import DEFAULT_JOIN_THRESHOLD, UnknownClusters


@dataclass
class RecognizerConfig:
    n_init: int = 3
    max_age: int = 15
    iou_min: float = 0.2
    threshold: float = DEFAULT_THRESHOLD
    top_k: int = 3
    unknown_join_threshold: float = DEFAULT_JOIN_THRESHOLD
    unknown_min_quality: float = 0.3
    change_confirmations: int = 2
    max_frames: int = 32
    reload_interval_s: float = 1.0
    crops_for_unknown: bool = True
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)


@dataclass
class _TrackMemory:
    track_ref: str
    first_seq: int
    first_ts_ns: int
    last_ts_ns: int
    frames: deque = field(default_factory=deque)  # (embedding, quality)
    best_quality: float = float("-inf")
    best_chip: np.ndarray | None = None
    who: Identity | None = None
    candidate: str | None = None  # label of a different identity gathering votes
    candidate_votes: int = 0
    counted_unknown: bool = False


@dataclass
class _Pending:
    ts_ns: int
    face_track: list[tuple[int, bool]]  # per face: (track id, confirmed)
    asked: list[int]
    qualities: list[float]
    events: list[TrackEvent]
    late: list[tuple[Track, float, np.ndarray]] = field(default_factory=list)  # short tracks: best shot


def _quality_of(face: object) -> float:
    q = getattr(face, "quality", 0.0)
    return float(getattr(q, "score", q) or 0.0)


class StreamRecognizer:
    """Per-track recognition for any number of streams. Not thread-safe: one per inference process."""

    def __init__(
        self,
        gallery: Gallery | None = None,
        aggregator: Aggregator | None = None,
        config: RecognizerConfig | None = None,
        crop_dir: Path | str | None = None,
        ship_crops: bool = False,
    ):
        self.config = config or RecognizerConfig()
        self.gallery = gallery
        self.aggregator = aggregator or MeanPool()
        self.crop_dir = Path(crop_dir) if crop_dir else None
        self.ship_crops = ship_crops  # the best shot goes to the sink with its event instead of to a local file
        self.scheduler = RecognitionScheduler(self.config.scheduler)
        self.unknowns = UnknownClusters(gallery, self.config.unknown_join_threshold) if gallery else None
        self._trackers: dict[str, FaceTracker] = {}
        self._memory: dict[tuple[str, int], _TrackMemory] = {}
        self._pending: dict[tuple[str, int], _Pending] = {}
        self._shots: dict[tuple[str, int], tuple[float, np.ndarray]] = {}  # tentative tracks' best shots
        self._next_reload = 0.0
        self.matcher = Matcher(GallerySnapshot(0, [], np.zeros((0, 0), np.float32), np.zeros(0, np.int64)))
        self.refresh_gallery(force=True)

    # -- gallery -----------------------------------------------------------------------------------------

    def refresh_gallery(self, force: bool = False) -> bool:
        """Re-read the gallery when it changed (checked at most every ``reload_interval_s``)."""
        if self.gallery is None:
            return False
        now = time.monotonic()
        if not force and now < self._next_reload:
            return False
        self._next_reload = now + self.config.reload_interval_s
        snap = self.gallery.reload_if_changed()
        if snap is None:
            return False
        self.matcher = Matcher(snap, threshold=self.config.threshold, top_k=self.config.top_k)
        if self.unknowns is not None:
            self.unknowns.reload()
        GALLERY_PEOPLE.set(len(snap.names))
        GALLERY_RELOADS.inc()
        return True

    # -- step 1 ------------------------------------------------------------------------------------------

    def update(self, stream_id: str, seq: int, ts_ns: int, faces: Sequence[object]) -> list[int]:
        """Track this frame's faces; returns the indices of the faces to embed."""
        key = (stream_id, seq)
        if key in self._pending:
            raise ValueError(f"frame {seq} of stream {stream_id!r} was updated twice without complete()")
        self.refresh_gallery()
        tracker = self._trackers.get(stream_id)
        if tracker is None:
            cfg = self.config
            tracker = self._trackers[stream_id] = FaceTracker(cfg.n_init, cfg.max_age, cfg.iou_min)
        boxes = np.array([np.asarray(f.box, dtype=np.float64)[:4] for f in faces]).reshape(-1, 4)
        step = tracker.update(boxes, seq, ts_ns)
        events: list[TrackEvent] = []
        for track in step.ended:
            events.append(self._end_track(stream_id, track.track_id, seq, ts_ns))
        late = [(t, *shot) for t in step.dropped if (shot := self._shots.pop((stream_id, t.track_id), None))]
        for tid in step.newly_confirmed:
            self._shots.pop((stream_id, tid), None)
            t = tracker.tracks[tid]
            mem = _TrackMemory(
                make_track_ref(stream_id, tid, t.first_seq, t.first_ts_ns), t.first_seq, t.first_ts_ns, ts_ns
            )
            self._memory[(stream_id, tid)] = mem
            events.append(self._event(EventKind.STARTED, stream_id, tid, mem, seq, ts_ns))
        asked, qualities = [], []
        for i, (face, tid, confirmed) in enumerate(zip(faces, step.track_ids, step.confirmed, strict=True)):
            q = _quality_of(face)
            qualities.append(q)
            mem = self._memory.get((stream_id, tid)) if confirmed else None
            if not confirmed:
                self._keep_shot((stream_id, tid), q, getattr(face, "chip", None))
            if mem is not None:
                mem.last_ts_ns = ts_ns
                chip = getattr(face, "chip", None)
                if q > mem.best_quality:
                    mem.best_quality = q
                    mem.best_chip = None if chip is None else np.array(chip, copy=True)
            if self.scheduler.decide((stream_id, tid), confirmed, q, ts_ns) is not None:
                asked.append(i)
        self._count_tracks(stream_id)
        self._pending[key] = _Pending(
            ts_ns, list(zip(step.track_ids, step.confirmed, strict=True)), asked, qualities, events, late
        )
        return asked

    def _keep_shot(self, key: tuple[str, int], quality: float, chip: np.ndarray | None) -> None:
        best = self._shots.get(key)
        if chip is not None and (best is None or quality > best[0]):
            self._shots[key] = (quality, np.array(chip, copy=True))

    def late_chips(self, stream_id: str, seq: int) -> list[np.ndarray]:
        """Best shots of the short tracks that ended at this frame: embed them after the asked faces."""
        p = self._pending.get((stream_id, seq))
        return [chip for _, _, chip in p.late] if p is not None else []

    # -- step 2 ------------------------------------------------------------------------------------------

    def complete(self, stream_id: str, seq: int, embeddings: np.ndarray | None) -> FrameResult:
        return self.complete_many([(stream_id, seq, embeddings)])[0]

    def complete_many(self, frames: Sequence[tuple[str, int, np.ndarray | None]]) -> list[FrameResult]:
        """Give the embeddings asked for by :meth:`update` (rows in the order of its indices)."""
        updated: list[tuple[str, int, int, _Pending]] = []  # stream, seq, track id, pending
        shorts: list[tuple[str, int, int, _Pending, _Pending]] = []  # ... and the frame's own pending
        pendings = []
        for stream_id, seq, emb in frames:
            p = self._pending.pop((stream_id, seq), None)
            if p is None:
                raise ValueError(f"complete() for frame {seq} of stream {stream_id!r} without update()")
            emb = np.zeros((0, 0), np.float32) if emb is None else np.asarray(emb, dtype=np.float32)
            if len(emb) == len(p.asked) + len(p.late) and p.late:
                emb, late_emb = emb[: len(p.asked)], emb[len(p.asked):]
                shorts += self._start_short(stream_id, seq, p, late_emb)
            if len(emb) != len(p.asked):
                for i in p.asked:
                    self.scheduler.cancel((stream_id, p.face_track[i][0]))
                raise ValueError(
                    f"frame {seq} of stream {stream_id!r}: {len(p.asked)} embeddings asked, {len(emb)} given"
                )
            for row, i in enumerate(p.asked):
                tid = p.face_track[i][0]
                mem = self._memory.get((stream_id, tid))
                if mem is None:
                    continue
                self.scheduler.observe((stream_id, tid), emb[row], p.qualities[i], p.ts_ns)
                mem.frames.append((emb[row], p.qualities[i]))
                while len(mem.frames) > self.config.max_frames:
                    mem.frames.popleft()
                updated.append((stream_id, seq, tid, p))
            pendings.append((stream_id, seq, p))
        self._decide(updated + [u[:4] for u in shorts])
        for stream_id, seq, tid, own, p in shorts:
            self._finish_short(stream_id, seq, tid, own, p)
        results = []
        for stream_id, seq, p in pendings:
            tracks = []
            asked = set(p.asked)
            for i, (tid, confirmed) in enumerate(p.face_track):
                mem = self._memory.get((stream_id, tid))
                tracks.append(
                    TrackResult(
                        face_index=i,
                        track_id=tid,
                        track_ref=mem.track_ref if mem else "",
                        confirmed=confirmed,
                        embedded=i in asked,
                        who=mem.who if mem else None,
                    )
                )
            for e in p.events:
                TRACK_EVENTS.labels(kind=e.kind.value).inc()
            results.append(FrameResult(stream_id, seq, p.ts_ns, tracks, p.events))
        return results

    def _start_short(self, stream_id: str, seq: int, p: _Pending, embeddings: np.ndarray
                     ) -> list[tuple[str, int, int, _Pending, _Pending]]:
        """Memory for each short track of ``p`` from its best shot, to be decided with the others."""
        out = []
        for (track, quality, chip), emb in zip(p.late, embeddings, strict=True):
            tid = track.track_id
            mem = _TrackMemory(make_track_ref(stream_id, tid, track.first_seq, track.first_ts_ns), track.first_seq,
                               track.first_ts_ns, track.last_ts_ns, deque([(emb, quality)]), quality, chip)
            self._memory[(stream_id, tid)] = mem
            out.append((stream_id, seq, tid, _Pending(p.ts_ns, [], [], [], []), p))
        p.late = []
        return out

    def _finish_short(self, stream_id: str, seq: int, tid: int, own: _Pending, p: _Pending) -> None:
        mem = self._memory[(stream_id, tid)]
        if mem.who is None:  # neither named nor good enough for an anonymous id: flicker
            del self._memory[(stream_id, tid)]
            return
        started = self._event(EventKind.STARTED, stream_id, tid, mem, mem.first_seq, mem.first_ts_ns)
        p.events += [started, *own.events, self._end_track(stream_id, tid, seq, p.ts_ns)]

    def _decide(self, updated: list[tuple[str, int, int, _Pending]]) -> None:
        if not updated:
            return
        mems = [self._memory[(s, t)] for s, _, t, _ in updated]
        seqs = [
            (np.stack([e for e, _ in m.frames]), np.array([q for _, q in m.frames], np.float32)) for m in mems
        ]
        aggregates = self.aggregator.aggregate_batch(seqs)
        matches = self.matcher.match_many(
            np.stack([a.embedding for a in aggregates]), [m.track_ref for m in mems]
        )
        for (stream_id, seq, tid, p), mem, agg, match in zip(updated, mems, aggregates, matches, strict=True):
            if np.isfinite(match.score):
                MATCH_SCORE.observe(max(match.score, 0.0))
            self.scheduler.note_score((stream_id, tid), float(match.score), self.matcher.threshold)
            self._apply(stream_id, seq, tid, p, mem, agg.embedding, agg.confidence, match)

    def _apply(
        self,
        stream_id: str,
        seq: int,
        tid: int,
        p: _Pending,
        mem: _TrackMemory,
        embedding: np.ndarray,
        confidence: float,
        match: MatchResult,
    ) -> None:
        score, confidence = float(match.score), float(confidence)
        if match.known:
            who = Identity(match.name, name=match.name, score=score, confidence=confidence)
        else:
            if mem.best_quality < self.config.unknown_min_quality:
                return  # too poor a view to start an anonymous identity; wait for a better shot
            cluster = (self.unknowns.assign(embedding, mem.best_quality, p.ts_ns, new_sighting=not mem.counted_unknown)
                       if self.unknowns is not None else None)
            if cluster is not None:
                mem.counted_unknown = True
                who = Identity(cluster.label, unknown_id=cluster.unknown_id, score=score, confidence=confidence)
            else:  # no clustering, or a shared gallery that cannot be reached right now (unknowns.py)
                who = Identity("unknown", score=score, confidence=confidence)
        if mem.who is not None and who.label == mem.who.label:
            mem.who, mem.candidate_votes = mem.who.with_evidence(score, confidence), 0
            return
        if mem.who is not None:
            # Hysteresis: unknown -> named is accepted at once; any other change needs repeated evidence.
            if mem.candidate == who.label:
                mem.candidate_votes += 1
            else:
                mem.candidate, mem.candidate_votes = who.label, 1
            needed = 1 if not mem.who.known and who.known else self.config.change_confirmations
            if mem.candidate_votes < needed:
                return
        previous = mem.who.label if mem.who else None
        mem.who, mem.candidate, mem.candidate_votes = who, None, 0
        kind = EventKind.IDENTIFIED if previous is None else EventKind.IDENTITY_CHANGED
        # With privacy.blur_unknown no face image of a person outside the gallery is stored.
        crop, jpeg = (best_shot(self.crop_dir, self.ship_crops, stream_id, mem.track_ref, mem.best_chip)
                      if who.known or self.config.crops_for_unknown else (None, None))
        event = self._event(kind, stream_id, tid, mem, seq, p.ts_ns, who=who, best_shot_path=crop,
                            previous_identity=previous, best_shot_jpeg=jpeg)
        p.events.append(event)
        if self.gallery is not None:
            self.gallery.record_sighting(event.event_id, mem.track_ref, stream_id, p.ts_ns, embedding,
                                         name=who.name, unknown_id=who.unknown_id, score=score, crop_path=crop)

    # -- helpers -----------------------------------------------------------------------------------------

    def _count_tracks(self, stream_id: str) -> None:
        ACTIVE_TRACKS.labels(stream_id).set(sum(1 for s, _ in self._memory if s == stream_id))

    def _event(self, kind: EventKind, stream_id: str, tid: int, mem: _TrackMemory, seq: int, ts_ns: int,
               **fields: object) -> TrackEvent:
        return new_event(kind, stream_id, tid, mem.track_ref, seq, ts_ns, mem.first_ts_ns, **fields)

    def _end_track(self, stream_id: str, tid: int, seq: int, ts_ns: int) -> TrackEvent:
        mem = self._memory.pop((stream_id, tid))
        self.scheduler.forget((stream_id, tid))
        dwell = (mem.last_ts_ns - mem.first_ts_ns) / 1e9
        return self._event(EventKind.ENDED, stream_id, tid, mem, seq, ts_ns, who=mem.who, dwell_seconds=dwell)

    def end_stream(self, stream_id: str, seq: int, ts_ns: int,
                   embed: Callable[[np.ndarray], np.ndarray] | None = None) -> list[TrackEvent]:
        """The stream stopped: end all its tracks (``track_ended`` events) and drop its state. With ``embed``
        its short tracks (not confirmed yet) are decided from their best shots first."""
        tracker = self._trackers.pop(stream_id, None)
        events = []
        shots = {k: self._shots.pop(k) for k in [k for k in self._shots if k[0] == stream_id]}
        if tracker is not None and embed is not None:
            late = [(t, *shots[(stream_id, t.track_id)]) for t in tracker.tentative()
                    if (stream_id, t.track_id) in shots]
            if late:
                p = _Pending(ts_ns, [], [], [], [], late)
                shorts = self._start_short(stream_id, seq, p, np.asarray(embed(np.stack([c for *_, c in late]))))
                self._decide([u[:4] for u in shorts])
                for _, _, tid, own, _ in shorts:
                    self._finish_short(stream_id, seq, tid, own, p)
                events += p.events
        if tracker is not None:
            for t in tracker.end_all():
                if (stream_id, t.track_id) in self._memory:
                    events.append(self._end_track(stream_id, t.track_id, seq, ts_ns))
        for key in [k for k in self._pending if k[0] == stream_id]:
            del self._pending[key]
        for e in events:
            TRACK_EVENTS.labels(kind=e.kind.value).inc()
        self._count_tracks(stream_id)
        return events
