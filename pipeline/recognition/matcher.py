"""Open-set matching of an embedding against the gallery.

Score of a person = mean of the top-k cosine similarities between the probe and that person's embeddings
(k=1 with one photo; with many photos top-k is robust to one bad enrolment). The best person is accepted
only when its score reaches ``threshold``; otherwise the probe is *unknown*. Negative feedback removes a
person from the candidates of a track the operator rejected, and of any probe that looks like a rejected
sighting (cosine >= ``reject_similarity``).

Thresholds are calibrated on impostor scores: :func:`calibrate_threshold` picks the lowest threshold whose
false-accept rate on impostor pairs stays under a target (see bench/bench_temporal.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facestream.engines.faces.vectors import l2_normalise

from .gallery import GallerySnapshot

# Cosine threshold for dlib's 128-d embeddings, from bench/bench_temporal.py's clean photo pairs: LFW
# true-accept 0.953 / false-accept 0.0002, ORL 0.995 / 0.007. Degraded video tracks calibrate stricter
# (0.935-0.948 for 1% false accepts there): raise it for high-security sites.
DEFAULT_THRESHOLD = 0.92
DEFAULT_TOP_K = 3
DEFAULT_REJECT_SIMILARITY = 0.95


@dataclass(frozen=True)
class MatchResult:
    name: str | None  # None: unknown
    score: float  # best candidate's score (also when unknown)
    candidate: str | None  # best candidate before the threshold (for logs and histograms)
    margin: float  # best minus second-best score

    @property
    def known(self) -> bool:
        return self.name is not None


class Matcher:
    """Matches probes against one :class:`GallerySnapshot`. Build a new one when the gallery changes."""

    def __init__(
        self,
        snapshot: GallerySnapshot,
        threshold: float = DEFAULT_THRESHOLD,
        top_k: int = DEFAULT_TOP_K,
        reject_similarity: float = DEFAULT_REJECT_SIMILARITY,
    ):
        self.snapshot = snapshot
        self.threshold = threshold
        self.top_k = max(1, top_k)
        self.reject_similarity = reject_similarity
        # Fixed for this snapshot: which gallery rows are whose, and each name's column.
        self._rows = [np.flatnonzero(snapshot.owner == p) for p in range(len(snapshot.names))]
        self._index = {n: i for i, n in enumerate(snapshot.names)}

    @property
    def size(self) -> int:
        return len(self.snapshot.names)

    def person_scores(self, probes: np.ndarray) -> np.ndarray:
        """(N, D) probes -> (N, P) per-person top-k mean cosine; -inf for people without embeddings."""
        return self._person_scores(l2_normalise(np.atleast_2d(probes)))

    def _person_scores(self, probes: np.ndarray) -> np.ndarray:
        snap = self.snapshot
        out = np.full((len(probes), len(snap.names)), -np.inf, dtype=np.float32)
        if not len(snap.vectors):
            return out
        sims = probes @ snap.vectors.T  # (N, M)
        for p, rows in enumerate(self._rows):
            if not len(rows):
                continue
            cols = sims[:, rows]
            k = min(self.top_k, cols.shape[1])
            top = -np.sort(-cols, axis=1)[:, :k]
            out[:, p] = top.mean(axis=1)
        return out

    def _rejected_mask(self, probes: np.ndarray, refs: list[str | None]) -> np.ndarray:
        snap = self.snapshot
        mask = np.zeros((len(probes), len(snap.names)), dtype=bool)
        for i, ref in enumerate(refs):
            for name in snap.rejection_refs.get(ref or "", ()):
                if name in self._index:
                    mask[i, self._index[name]] = True
        if len(snap.rejection_vectors):
            sims = probes @ snap.rejection_vectors.T  # probes are unit length (match_many)
            hit_rows, hit_cols = np.nonzero(sims >= self.reject_similarity)
            mask[hit_rows, snap.rejection_owner[hit_cols]] = True
        return mask

    def match_many(self, probes: np.ndarray, refs: list[str | None] | None = None) -> list[MatchResult]:
        """Match (N, D) probes; ``refs`` are the track/event ids used for negative feedback."""
        probes = np.atleast_2d(np.asarray(probes, dtype=np.float32))
        refs = refs if refs is not None else [None] * len(probes)
        if self.size == 0:
            return [MatchResult(None, float("-inf"), None, 0.0) for _ in probes]
        probes = l2_normalise(probes)
        scores = self._person_scores(probes)
        scores[self._rejected_mask(probes, refs)] = -np.inf
        results = []
        for row in scores:
            order = np.argsort(-row)
            best = float(row[order[0]])
            second = float(row[order[1]]) if len(order) > 1 else float("-inf")
            candidate = self.snapshot.names[order[0]] if np.isfinite(best) else None
            margin = best - second if np.isfinite(second) else (best if np.isfinite(best) else 0.0)
            name = candidate if best >= self.threshold else None
            results.append(MatchResult(name, best, candidate, float(margin)))
        return results

    def match(self, probe: np.ndarray, ref: str | None = None) -> MatchResult:
        return self.match_many(probe[None, :], [ref])[0]


def calibrate_threshold(impostor_scores: np.ndarray, target_far: float = 0.01) -> float:
    """Lowest threshold with false-accept rate <= ``target_far`` on the given impostor scores."""
    s = np.sort(np.asarray(impostor_scores, dtype=np.float64))
    if not len(s):
        raise ValueError("need impostor scores to calibrate a threshold")
    idx = int(np.ceil((1.0 - target_far) * len(s))) - 1
    idx = min(max(idx, 0), len(s) - 1)
    return float(np.nextafter(s[idx], np.inf))


# Faces smaller than this (box side, pixels of the image the face was found in) are reported, never named:
# it is HOG's window at upsample 2 (80 / 4), and no smaller face was calibrated (faces shrunk to 24 px come
# out of the detector with 20-30 px boxes).
MIN_NAMED_FACE_PX = 20.0
# (box side px, cosine added to the threshold): how far impostor scores rise as a face shrinks, chosen on
# the calibration split of bench/bench_small_faces.py (LFW people 0,2,4,6,8 + ORL s1-s20: the 0.99-quantile
# of impostor scores at that size minus the one at full size); linear in between, 0 from the last entry up.
# Measured: they do not rise (shifts <= 0.0011): a shrunk face's genuine score falls instead, so small faces
# end up unknown more often (the evidence is not there) rather than wrongly named.
SMALL_FACE_SHIFTS = ((20.0, 0.0), (24.0, 0.0), (32.0, 0.0011), (48.0, 0.0001), (64.0, 0.0))


def size_aware_threshold(size_px: float, threshold: float = DEFAULT_THRESHOLD) -> float:
    """The cosine a face of ``size_px`` (its box's shorter side) must reach to be named; inf below 24 px.

    A small face enlarged into the 150 px chip carries less detail, so strangers' scores rise: the threshold
    rises by as much, keeping the false-accept rate of full-size faces (bench/results/small_faces.md).
    """
    if not size_px >= MIN_NAMED_FACE_PX:
        return float("inf")
    sizes = [s for s, _ in SMALL_FACE_SHIFTS]
    return threshold + float(np.interp(size_px, sizes, [d for _, d in SMALL_FACE_SHIFTS]))
