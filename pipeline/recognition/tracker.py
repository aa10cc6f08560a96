"""Multi-face tracker for one stream: constant-velocity Kalman filter + IoU, Hungarian assignment.

Life of a track: born *tentative* on an unmatched detection, *confirmed* after ``n_init`` consecutive hits
(a tentative track that misses a frame is dropped), *lost* while unmatched (its box keeps moving with the
filter's velocity so it can be picked up again after a short occlusion), *ended* after ``max_age`` missed
frames. Ids are small integers allocated in order, so the same input gives the same ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np
from scipy.optimize import linear_sum_assignment


class TrackState(str, Enum):
    TENTATIVE = "tentative"
    CONFIRMED = "confirmed"
    LOST = "lost"
    ENDED = "ended"


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU between every box of ``a`` (N,4) and ``b`` (M,4), boxes as x1,y1,x2,y2 -> (N,M)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]).clip(0) * (a[:, 3] - a[:, 1]).clip(0)
    area_b = (b[:, 2] - b[:, 0]).clip(0) * (b[:, 3] - b[:, 1]).clip(0)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


class BoxKalman:
    """Constant-velocity Kalman filter on (cx, cy, w, h); state adds their velocities per frame."""

    _F = np.eye(8)
    _F[:4, 4:] = np.eye(4)
    _H = np.eye(4, 8)

    def __init__(self, box: np.ndarray):
        x1, y1, x2, y2 = (float(v) for v in box)
        w, h = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
        self.x = np.array([(x1 + x2) / 2, (y1 + y2) / 2, w, h, 0, 0, 0, 0], dtype=np.float64)
        scale = max(w, h)
        self.P = (
            np.diag([scale, scale, scale, scale, 10 * scale, 10 * scale, 10 * scale, 10 * scale]) ** 2 / 100
        )
        self._scale = scale

    def _noise(self) -> tuple[np.ndarray, np.ndarray]:
        # Noise proportional to the face size: a 40 px face and a 400 px face move alike in relative terms.
        s = max(self.x[2], self.x[3], 1.0)
        q = np.diag([0.05 * s] * 4 + [0.02 * s] * 4) ** 2
        r = np.diag([0.05 * s] * 4) ** 2
        return q, r

    def predict(self) -> None:
        q, _ = self._noise()
        self.x = self._F @ self.x
        self.x[2:4] = np.maximum(self.x[2:4], 1.0)
        self.P = self._F @ self.P @ self._F.T + q

    def update(self, box: np.ndarray) -> None:
        x1, y1, x2, y2 = (float(v) for v in box)
        z = np.array([(x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, 1.0), max(y2 - y1, 1.0)])
        _, r = self._noise()
        y = z - self._H @ self.x
        s = self._H @ self.P @ self._H.T + r
        k = self.P @ self._H.T @ np.linalg.inv(s)
        self.x = self.x + k @ y
        self.P = (np.eye(8) - k @ self._H) @ self.P

    @property
    def box(self) -> np.ndarray:
        cx, cy, w, h = self.x[:4]
        return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


@dataclass
class Track:
    track_id: int
    kalman: BoxKalman
    first_seq: int
    first_ts_ns: int
    last_seq: int
    last_ts_ns: int
    state: TrackState = TrackState.TENTATIVE
    hits: int = 1
    misses: int = 0
    box: np.ndarray = field(default_factory=lambda: np.zeros(4))

    @property
    def is_confirmed(self) -> bool:
        return self.state in (TrackState.CONFIRMED, TrackState.LOST)


@dataclass
class TrackerStep:
    """Result of one frame: the track id of every detection (same order), tracks that ended, and tentative
    tracks dropped (never confirmed; the recognizer may still decide them from their best shot)."""

    track_ids: list[int]
    confirmed: list[bool]
    newly_confirmed: list[int]
    ended: list[Track]
    dropped: list[Track] = field(default_factory=list)


class FaceTracker:
    """Tracks faces in one stream. Call :meth:`update` once per frame with that frame's boxes."""

    def __init__(self, n_init: int = 3, max_age: int = 15, iou_min: float = 0.2):
        if n_init < 1 or max_age < 1:
            raise ValueError("n_init and max_age must be >= 1")
        self.n_init = n_init
        self.max_age = max_age
        self.iou_min = iou_min
        self.tracks: dict[int, Track] = {}
        self._next_id = 1

    def update(self, boxes: np.ndarray, seq: int = 0, ts_ns: int = 0) -> TrackerStep:
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        live = list(self.tracks.values())
        for t in live:
            t.kalman.predict()
        predicted = np.array([t.kalman.box for t in live]).reshape(-1, 4)
        det_track: list[int | None] = [None] * len(boxes)
        matched_tracks: set[int] = set()
        if live and len(boxes):
            iou = iou_matrix(predicted, boxes)
            # Confirmed tracks get priority over tentative ones at equal overlap.
            bonus = np.array([0.01 if t.is_confirmed else 0.0 for t in live])[:, None]
            rows, cols = linear_sum_assignment(-(iou + bonus * (iou > 0)))
            for r, c in zip(rows, cols, strict=True):
                if iou[r, c] >= self.iou_min:
                    det_track[c] = live[r].track_id
                    matched_tracks.add(live[r].track_id)
        newly_confirmed: list[int] = []
        ended: list[Track] = []
        dropped: list[Track] = []
        for t in live:
            if t.track_id in matched_tracks:
                continue
            t.misses += 1
            if t.state == TrackState.TENTATIVE:
                dropped.append(self.tracks.pop(t.track_id))  # never confirmed: flicker, or a brief sighting
            elif t.misses > self.max_age:
                t.state = TrackState.ENDED
                ended.append(self.tracks.pop(t.track_id))
            else:
                t.state = TrackState.LOST
                t.box = t.kalman.box
        for i, box in enumerate(boxes):
            tid = det_track[i]
            if tid is None:
                tid = self._next_id
                self._next_id += 1
                self.tracks[tid] = Track(tid, BoxKalman(box), seq, ts_ns, seq, ts_ns, box=box.copy())
                det_track[i] = tid
                t = self.tracks[tid]
                if self.n_init <= 1:
                    t.state = TrackState.CONFIRMED
                    newly_confirmed.append(tid)
                continue
            t = self.tracks[tid]
            t.kalman.update(box)
            t.box = box.copy()
            t.hits += 1
            t.misses = 0
            t.last_seq, t.last_ts_ns = seq, ts_ns
            if t.state == TrackState.TENTATIVE and t.hits >= self.n_init:
                t.state = TrackState.CONFIRMED
                newly_confirmed.append(tid)
            elif t.state == TrackState.LOST:
                t.state = TrackState.CONFIRMED
        ids = [int(t) for t in det_track]  # type: ignore[arg-type]
        return TrackerStep(
            track_ids=ids,
            confirmed=[self.tracks[t].is_confirmed for t in ids],
            newly_confirmed=newly_confirmed,
            ended=ended,
            dropped=dropped,
        )

    def tentative(self) -> list[Track]:
        """Tracks not confirmed yet (what :meth:`end_all` drops)."""
        return [t for t in self.tracks.values() if not t.is_confirmed]

    def end_all(self) -> list[Track]:
        """End every track (stream closed); returns the confirmed ones."""
        out = [t for t in self.tracks.values() if t.is_confirmed]
        for t in out:
            t.state = TrackState.ENDED
        self.tracks.clear()
        return out
