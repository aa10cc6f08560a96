"""Which faces to embed this frame: recognise once per track, re-check only when it can change the answer.

Per confirmed track a face is embedded when
  * the track was just confirmed (no embedding yet),
  * its quality beats the best quality embedded so far by ``quality_margin`` (a better shot),
  * the last embedding drifted from the one before by more than ``drift_threshold`` cosine distance (a
    possible tracker id switch or a changed face): the next ``drift_recheck_frames`` faces are embedded,
  * ``max_interval_s`` passed since its last embedding (periodic re-verification),
  * its last decision was *uncertain*: the match score within ``uncertain_margin`` of the threshold, where one
    more frame can change the answer (the recognizer tells it, :meth:`RecognitionScheduler.note_score`): the
    next face is embedded, up to ``uncertain_frames`` such faces per track.
Tentative tracks are never embedded (most are flicker). Every face not embedded counts as *saved* compared
with per-frame recognition (``facestream_embeddings_saved_total``); embedded ones count in
``facestream_embeddings_computed_total{reason}``.

Why the uncertain re-check: sensor noise (a dark frame) changes from frame to frame, so one embedding's score
is noisy and biased low, and the track's aggregate of several is not. The two defaults were chosen on darkened
LFW (bench/bench_low_light.py's "LFW noise" table, faces at half size; never on the street clip it reports): one
draw's genuine score has a standard deviation of ~0.007 and is ~0.009 below the score of the mean of 6 draws, so a
score within 0.02 (bias + 1.5 sd) of the threshold can be on the wrong side of it; the band is symmetric (a name
that close above is checked too). 5 more embeddings (6 in all) take most of the gain: identified at 0.92 from
the mean of 1, 3 and 6 draws 0.84, 0.93 and 0.95.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from prometheus_client import Counter

from facestream.engines.faces.vectors import l2_normalise

EMBEDDINGS_COMPUTED = Counter(
    "facestream_embeddings_computed_total",
    "Face embeddings computed, by why the scheduler asked for them",
    ["reason"],
)
EMBEDDINGS_SAVED = Counter(
    "facestream_embeddings_saved_total",
    "Faces seen but not embedded, compared with embedding every face of every frame",
)

REASON_CONFIRMED = "confirmed"
REASON_BETTER_SHOT = "better_shot"
REASON_DRIFT = "drift_recheck"
REASON_INTERVAL = "interval"
REASON_UNCERTAIN = "uncertain"


@dataclass
class SchedulerConfig:
    quality_margin: float = 0.1
    drift_threshold: float = 0.25
    drift_recheck_frames: int = 2
    max_interval_s: float = 2.0
    uncertain_margin: float = 0.02
    uncertain_frames: int = 5


@dataclass
class _TrackSchedule:
    best_quality: float = float("-inf")
    last_embed_ns: int | None = None
    last_embedding: np.ndarray | None = None
    recheck_left: int = 0
    pending: bool = False
    uncertain: bool = False
    uncertain_used: int = 0


class RecognitionScheduler:
    """Scheduling state of many tracks; keys are any hashable (e.g. ``(stream_id, track_id)``)."""

    def __init__(self, config: SchedulerConfig | None = None):
        self.config = config or SchedulerConfig()
        self._tracks: dict[object, _TrackSchedule] = {}
        self.computed = 0
        self.saved = 0

    def decide(self, key: object, confirmed: bool, quality: float, ts_ns: int) -> str | None:
        """Reason to embed this face now, or None. Counts the decision in the metrics."""
        reason = self._reason(key, confirmed, quality, ts_ns) if confirmed else None
        if reason is None:
            self.saved += 1
            EMBEDDINGS_SAVED.inc()
            return None
        st = self._tracks.setdefault(key, _TrackSchedule())
        st.pending = True
        if reason == REASON_DRIFT:
            st.recheck_left -= 1
        elif reason == REASON_UNCERTAIN:
            st.uncertain_used += 1
        self.computed += 1
        EMBEDDINGS_COMPUTED.labels(reason=reason).inc()
        return reason

    def _reason(self, key: object, confirmed: bool, quality: float, ts_ns: int) -> str | None:
        st = self._tracks.get(key)
        if st is None or st.last_embed_ns is None:
            # Nothing embedded yet (or the embedding is in flight): ask once, not on every frame in between.
            return None if st is not None and st.pending else REASON_CONFIRMED
        if st.pending:
            return None
        cfg = self.config
        if st.recheck_left > 0:
            return REASON_DRIFT
        if st.uncertain and st.uncertain_used < cfg.uncertain_frames:
            return REASON_UNCERTAIN
        if quality >= st.best_quality + cfg.quality_margin:
            return REASON_BETTER_SHOT
        if (ts_ns - st.last_embed_ns) / 1e9 >= cfg.max_interval_s:
            return REASON_INTERVAL
        return None

    def observe(self, key: object, embedding: np.ndarray, quality: float, ts_ns: int) -> bool:
        """Record a computed embedding; returns True when it drifted from the previous one."""
        st = self._tracks.setdefault(key, _TrackSchedule())
        st.pending = False
        emb = l2_normalise(embedding)
        drifted = False
        if st.last_embedding is not None:
            distance = 1.0 - float(emb @ st.last_embedding)
            if distance > self.config.drift_threshold:
                drifted = True
                st.recheck_left = self.config.drift_recheck_frames
        st.last_embedding = emb
        st.last_embed_ns = ts_ns
        st.best_quality = max(st.best_quality, float(quality))
        return drifted

    def note_score(self, key: object, score: float, threshold: float) -> None:
        """The track's decision after its latest embedding scored ``score`` against match ``threshold``: within
        ``uncertain_margin`` of it, the next face is embedded too (see the module doc). Unknown keys are ignored
        (short tracks decided at their end are not scheduled)."""
        st = self._tracks.get(key)
        if st is not None:
            st.uncertain = bool(np.isfinite(score)) and abs(score - threshold) <= self.config.uncertain_margin

    def cancel(self, key: object) -> None:
        """The embedding asked for was not computed (e.g. the frame was dropped): allow asking again."""
        st = self._tracks.get(key)
        if st is not None:
            st.pending = False

    def forget(self, key: object) -> None:
        self._tracks.pop(key, None)

    @property
    def tracked(self) -> int:
        return len(self._tracks)
