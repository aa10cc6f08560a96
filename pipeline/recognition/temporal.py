"""Aggregate a track's sequence of (embedding, quality) into one embedding and a confidence.

* ``mean``: mean of the L2-normalised embeddings (the baseline).
* ``quality``: the same, weighted by face quality.
* ``gru`` / ``attention``: learned heads trained by ``engines/training/temporal.py`` and run as ONNX through
  ``facestream.engines.runtime.load_model`` (TensorRT on GPU, ONNX Runtime elsewhere). No torch here.

Learned head contract (both models; names in ``engines/temporal_heads.py``): inputs ``embeddings`` (seq, batch, 128), ``quality`` (seq, batch) and
``mask`` (seq, batch; 1 = real frame, 0 = padding at the end), all float32, sequence-major; outputs
``embedding`` (batch, 128), L2-normalised, and ``confidence`` (batch,) in [0, 1]. Sequences in one batch are
right-padded to the longest; tracks longer than ``max_len`` keep their ``max_len`` best-quality frames.

Confidence of the pooling baselines is the mean cosine between the frames and their mean (consistency).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from facestream.engines.faces.vectors import l2_normalise
from facestream.engines.temporal_heads import (
    INPUT_EMBEDDINGS,
    INPUT_MASK,
    INPUT_NAMES,
    INPUT_QUALITY,
    MAX_LEN,
    MODEL_NAMES,
    OUTPUT_CONFIDENCE,
    OUTPUT_EMBEDDING,
)
from facestream.errors import FacestreamError

AGGREGATORS = ("mean", "quality", "gru", "attention")


@dataclass(frozen=True)
class Aggregate:
    embedding: np.ndarray  # (D,) float32, unit norm
    confidence: float


Sequence = tuple[np.ndarray, np.ndarray]  # (T, D) embeddings, (T,) qualities


class Aggregator(Protocol):
    name: str

    def aggregate_batch(self, sequences: list[Sequence]) -> list[Aggregate]: ...


def _consistency(frames: np.ndarray, pooled: np.ndarray, weights: np.ndarray) -> float:
    cos = frames @ pooled
    return float(np.clip((weights * cos).sum() / max(weights.sum(), 1e-12), 0.0, 1.0))


class MeanPool:
    name = "mean"

    def _weights(self, qualities: np.ndarray) -> np.ndarray:
        return np.ones(len(qualities), dtype=np.float32)

    def aggregate_batch(self, sequences: list[Sequence]) -> list[Aggregate]:
        out = []
        for emb, q in sequences:
            frames = l2_normalise(np.atleast_2d(emb))
            w = self._weights(np.asarray(q, dtype=np.float32).reshape(-1))
            pooled = l2_normalise((w[:, None] * frames).sum(axis=0))
            out.append(Aggregate(pooled, _consistency(frames, pooled, w)))
        return out

    def aggregate(self, embeddings: np.ndarray, qualities: np.ndarray) -> Aggregate:
        return self.aggregate_batch([(embeddings, qualities)])[0]


class QualityWeightedMean(MeanPool):
    name = "quality"

    def _weights(self, qualities: np.ndarray) -> np.ndarray:
        w = np.clip(qualities, 0.0, None) + 1e-3  # all-zero quality still averages
        return w.astype(np.float32)


def pack_sequences(sequences: list[Sequence], max_len: int) -> dict[str, np.ndarray]:
    """Right-pad sequences into the learned heads' (seq, batch, ...) inputs."""
    trimmed = []
    for emb, q in sequences:
        emb = l2_normalise(np.atleast_2d(emb))
        q = np.asarray(q, dtype=np.float32).reshape(-1)
        if len(q) > max_len:
            keep = np.sort(np.argsort(-q, kind="stable")[:max_len])  # best frames, in time order
            emb, q = emb[keep], q[keep]
        trimmed.append((emb, q))
    t = max(len(q) for _, q in trimmed)
    b, d = len(trimmed), trimmed[0][0].shape[1]
    x = np.zeros((t, b, d), np.float32)
    qual = np.zeros((t, b), np.float32)
    mask = np.zeros((t, b), np.float32)
    for i, (emb, q) in enumerate(trimmed):
        n = len(q)
        x[:n, i] = emb
        qual[:n, i] = q
        mask[:n, i] = 1.0
    return {INPUT_EMBEDDINGS: x, INPUT_QUALITY: qual, INPUT_MASK: mask}


class LearnedHead:
    """A GRU or attention head from the model store, run through ``facestream.engines.runtime``."""

    def __init__(
        self,
        kind: str,
        store: object | None = None,
        backend: str = "auto",
        precision: str | None = None,
        max_len: int = MAX_LEN,
    ):
        from facestream.engines.runtime import load_model

        if kind not in MODEL_NAMES:
            raise FacestreamError(
                f"unknown learned aggregator {kind!r} (choose from {', '.join(MODEL_NAMES)})"
            )
        self.name = kind
        self.model = load_model(MODEL_NAMES[kind], backend=backend, precision=precision, store=store)
        names = {s.name for s in self.model.manifest.inputs}
        if names != set(INPUT_NAMES):
            raise FacestreamError(
                f"model {MODEL_NAMES[kind]!r} is not a temporal head (inputs {sorted(names)}); "
                "retrain it with: facestream train-temporal --data FACES_DIR"
            )
        self.max_len = int(self.model.manifest.extra.get("max_len", max_len))

    def aggregate_batch(self, sequences: list[Sequence]) -> list[Aggregate]:
        if not sequences:
            return []
        out = self.model.infer(pack_sequences(sequences, self.max_len))
        emb = l2_normalise(out[OUTPUT_EMBEDDING])
        conf = np.asarray(out[OUTPUT_CONFIDENCE], dtype=np.float32).reshape(-1)
        return [Aggregate(emb[i], float(conf[i])) for i in range(len(sequences))]

    def aggregate(self, embeddings: np.ndarray, qualities: np.ndarray) -> Aggregate:
        return self.aggregate_batch([(embeddings, qualities)])[0]


def make_aggregator(
    kind: str, store: object | None = None, backend: str = "auto", precision: str | None = None
) -> Aggregator:
    """``mean`` | ``quality`` | ``gru`` | ``attention``."""
    if kind == "mean":
        return MeanPool()
    if kind == "quality":
        return QualityWeightedMean()
    if kind in MODEL_NAMES:
        return LearnedHead(kind, store=store, backend=backend, precision=precision)
    raise FacestreamError(f"unknown temporal aggregator {kind!r} (choose from {', '.join(AGGREGATORS)})")
