"""Train and export the temporal heads (GRU and self-attention) that aggregate a track's embeddings.

Imported only by the train command (it needs torch). Both heads share one contract, named in
``engines/temporal_heads.py`` and run by ``pipeline/recognition/temporal.py``: sequence-major inputs
``embeddings`` (T,B,128), ``quality`` (T,B), ``mask`` (T,B) and outputs ``embedding`` (B,128, unit norm) and
``confidence`` (B,).

Both heads output a *re-weighted mean of the input embeddings*, so the result stays in the embedder's space
and is matched against one-photo galleries with the same thresholds as mean pooling. They learn which frames
to trust (blurred, dark, turned, tiny faces) from the whole sequence, which plain or quality-weighted
pooling cannot: an outlier frame is visible only against the others.

Training objective, per simulated track of a training identity: softmax cross-entropy over cosine
similarities (scale 16) between the aggregated embedding and one clean gallery photo per identity (not a
photo the track was drawn from), plus binary cross-entropy teaching ``confidence`` whether that nearest
gallery photo is the right person.
"""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from facestream.engines.faces.vectors import EMBEDDING_SIZE
from facestream.engines.fp16 import convert_to_fp16
from facestream.engines.manifest import Manifest, ProfileSpec, TensorSpec
from facestream.engines.store import ModelStore
from facestream.engines.temporal_heads import (
    INPUT_EMBEDDINGS,
    INPUT_MASK,
    INPUT_NAMES,
    INPUT_QUALITY,
    MAX_LEN,
    MODEL_NAMES,
    OUTPUT_CONFIDENCE,
    OUTPUT_EMBEDDING,
    OUTPUT_NAMES,
)
from facestream.errors import FacestreamError

from .temporal_data import EmbeddingBank, sample_track

log = logging.getLogger(__name__)

NEG = -1.0e4  # masked logit; finite so FP16 engines stay finite


def _masked_pool(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(T,B) logits, (T,B) mask -> (T,B) weights summing to 1 over real frames."""
    return torch.softmax(logits + (1.0 - mask) * NEG, dim=0)


class _PoolingOutput(nn.Module):
    """Weights over frames + hidden summary -> (unit embedding, confidence).

    The embedding is a re-weighted mean of the input embeddings and nothing else: it stays in the
    embedder's space, so gallery thresholds calibrated for mean pooling carry over.
    """

    def __init__(self, hidden: int):
        super().__init__()
        self.confidence = nn.Linear(hidden, 1)

    def forward(self, weights: torch.Tensor, frames: torch.Tensor, hidden: torch.Tensor):
        w = weights.unsqueeze(-1)  # (T,B,1)
        emb = (w * frames).sum(0)  # (B,D)
        emb = emb / torch.sqrt((emb * emb).sum(-1, keepdim=True) + 1e-12)
        conf = torch.sigmoid(self.confidence((w * hidden).sum(0))).squeeze(-1)
        return emb, conf


class GRUHead(nn.Module):
    """GRU over [embedding, quality] per frame; per-frame scores -> masked softmax weights."""

    def __init__(self, hidden: int = 64):
        super().__init__()
        self.gru = nn.GRU(EMBEDDING_SIZE + 1, hidden)  # seq-major: exports as ONNX GRU with layout=0
        self.score = nn.Linear(hidden + 1, 1)
        self.out = _PoolingOutput(hidden)

    def forward(self, embeddings: torch.Tensor, quality: torch.Tensor, mask: torch.Tensor):
        x = torch.cat([embeddings, quality.unsqueeze(-1)], dim=-1)
        h, _ = self.gru(x)  # (T,B,H); right padding never reaches earlier steps
        logits = self.score(torch.cat([h, quality.unsqueeze(-1)], dim=-1)).squeeze(-1)
        return self.out(_masked_pool(logits, mask), embeddings, h)


class AttentionHead(nn.Module):
    """One self-attention layer (MatMul/Softmax/MatMul) over the frames; per-frame scores -> weights."""

    def __init__(self, dim: int = 64):
        super().__init__()
        self.proj = nn.Linear(EMBEDDING_SIZE + 1, dim)
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)
        self.ff = nn.Sequential(nn.Linear(dim, dim), nn.ReLU())
        self.score = nn.Linear(dim + 1, 1)
        self.out = _PoolingOutput(dim)
        self.scale = 1.0 / math.sqrt(dim)

    def forward(self, embeddings: torch.Tensor, quality: torch.Tensor, mask: torch.Tensor):
        x = torch.cat([embeddings, quality.unsqueeze(-1)], dim=-1).transpose(0, 1)  # (B,T,D+1)
        z = torch.relu(self.proj(x))
        att = torch.matmul(self.q(z), self.k(z).transpose(1, 2)) * self.scale  # (B,T,T)
        key_mask = mask.transpose(0, 1).unsqueeze(1)  # (B,1,T)
        att = torch.softmax(att + (1.0 - key_mask) * NEG, dim=-1)
        ctx = z + torch.matmul(att, self.v(z))
        ctx = ctx + self.ff(ctx)
        h = ctx.transpose(0, 1)  # (T,B,dim)
        logits = self.score(torch.cat([h, quality.unsqueeze(-1)], dim=-1)).squeeze(-1)
        return self.out(_masked_pool(logits, mask), embeddings, h)


def build_head(kind: str) -> nn.Module:
    if kind == "gru":
        return GRUHead()
    if kind == "attention":
        return AttentionHead()
    raise FacestreamError(f"unknown temporal head {kind!r} (choose from gru, attention)")


@dataclass
class TrainConfig:
    steps: int = 1500
    batch: int = 64
    lr: float = 3e-3
    scale: float = 16.0
    min_len: int = 3
    max_len: int = 24
    drop_rate: float = 0.2
    seed: int = 0
    log_every: int = 250
    history: list[float] = field(default_factory=list)


def _batch(bank: EmbeddingBank, rng: np.random.Generator, cfg: TrainConfig):
    """A batch of tracks and, per track, a gallery of one clean photo per identity (not in the track)."""
    n_people = len(bank.people)
    clean = bank.variant == 0
    people = rng.integers(0, n_people, cfg.batch)
    gallery_rows = []
    for p in range(n_people):
        rows = np.flatnonzero(clean & (bank.person == p))
        gallery_rows.append(int(rng.choice(rows)))
    gallery = bank.embeddings[gallery_rows]  # (P,D)
    seqs = [
        sample_track(
            bank,
            int(p),
            rng,
            exclude_images={int(bank.image[gallery_rows[p]])},
            min_len=cfg.min_len,
            max_len=cfg.max_len,
            drop_rate=cfg.drop_rate,
        )
        for p in people
    ]
    t = max(len(q) for _, q in seqs)
    x = np.zeros((t, cfg.batch, EMBEDDING_SIZE), np.float32)
    qual = np.zeros((t, cfg.batch), np.float32)
    mask = np.zeros((t, cfg.batch), np.float32)
    for i, (e, q) in enumerate(seqs):
        x[: len(q), i], qual[: len(q), i], mask[: len(q), i] = e, q, 1.0
    return (
        torch.from_numpy(x),
        torch.from_numpy(qual),
        torch.from_numpy(mask),
        torch.from_numpy(gallery),
        torch.from_numpy(people.astype(np.int64)),
    )


def train_head(kind: str, bank: EmbeddingBank, cfg: TrainConfig | None = None) -> nn.Module:
    """Train one head on tracks simulated from ``bank`` (its identities are the training identities)."""
    cfg = cfg or TrainConfig()
    if len(bank.people) < 2:
        raise FacestreamError("temporal training needs at least 2 identities")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = build_head(kind)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps)
    bce = nn.BCELoss()
    model.train()
    running = 0.0
    for step in range(1, cfg.steps + 1):
        x, q, m, gallery, target = _batch(bank, rng, cfg)
        emb, conf = model(x, q, m)
        logits = cfg.scale * emb @ gallery.T
        loss = nn.functional.cross_entropy(logits, target)
        correct = (logits.argmax(1) == target).float()
        loss = loss + 0.2 * bce(conf, correct)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
        value = loss.item()
        running = 0.95 * running + 0.05 * value if step > 1 else value
        cfg.history.append(value)
        if step % cfg.log_every == 0:
            log.info("%s head step %d/%d loss %.4f", kind, step, cfg.steps, running)
    model.eval()
    return model


def export_onnx(model: nn.Module, opset: int = 17) -> onnx.ModelProto:
    """ONNX with dynamic seq and batch axes (TorchScript exporter: nn.GRU becomes one GRU op, layout=0)."""
    t, b = 5, 2
    args = (torch.zeros(t, b, EMBEDDING_SIZE), torch.ones(t, b), torch.ones(t, b))
    buf = io.BytesIO()
    torch.onnx.export(
        model,
        args,
        buf,
        input_names=list(INPUT_NAMES),
        output_names=list(OUTPUT_NAMES),
        dynamic_axes={
            **{name: {0: "seq", 1: "batch"} for name in INPUT_NAMES},
            **{name: {0: "batch"} for name in OUTPUT_NAMES},
        },
        opset_version=opset,
        dynamo=False,
    )
    proto = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(proto)
    return proto


def head_manifest(kind: str, metrics: dict | None = None) -> Manifest:
    seq_batch = ["seq", "batch"]
    return Manifest(
        name=MODEL_NAMES[kind],
        task="temporal",
        inputs=[
            TensorSpec(name=INPUT_EMBEDDINGS, shape=[*seq_batch, EMBEDDING_SIZE], value_range=(-1.001, 1.001)),
            TensorSpec(name=INPUT_QUALITY, shape=seq_batch),
            TensorSpec(name=INPUT_MASK, shape=seq_batch, value_range=(0.0, 1.0)),
        ],
        outputs=[
            TensorSpec(name=OUTPUT_EMBEDDING, shape=["batch", EMBEDDING_SIZE]),
            TensorSpec(name=OUTPUT_CONFIDENCE, shape=["batch"]),
        ],
        profiles={
            INPUT_EMBEDDINGS: ProfileSpec(
                min=[1, 1, EMBEDDING_SIZE], opt=[16, 16, EMBEDDING_SIZE], max=[MAX_LEN, 64, EMBEDDING_SIZE]
            ),
            INPUT_QUALITY: ProfileSpec(min=[1, 1], opt=[16, 16], max=[MAX_LEN, 64]),
            INPUT_MASK: ProfileSpec(min=[1, 1], opt=[16, 16], max=[MAX_LEN, 64]),
        },
        preprocessing={
            INPUT_EMBEDDINGS: f"L2-normalised {EMBEDDING_SIZE}-d face embeddings, sequence-major, right-padded",
            INPUT_QUALITY: "face quality score in [0, 1] per frame (0 on padding)",
            INPUT_MASK: "1 for real frames, 0 for padding at the end",
        },
        licence="Apache-2.0 (trained by facestream on embeddings of ORL and LFW faces)",
        source="engines/training/temporal.py",
        extra={"kind": kind, "max_len": MAX_LEN, "layout": "seq-major", **(metrics or {})},
    )


def export_to_store(kind: str, model: nn.Module, store: ModelStore, metrics: dict | None = None):
    """Export FP32 and FP16 variants into the store as ``temporal-gru`` / ``temporal-attention``."""
    fp32 = export_onnx(model)
    # GRU stays FP32 inside the FP16 file: ONNX Runtime's CPU GRU has no float16 kernel.
    fp16 = convert_to_fp16(fp32, op_block_list=_fp16_block_list())
    return store.put(
        head_manifest(kind, metrics),
        {"fp32": fp32.SerializeToString(), "fp16": fp16.SerializeToString()},
    )


def _fp16_block_list() -> list[str]:
    from onnxconverter_common import float16

    return [*float16.DEFAULT_OP_BLOCK_LIST, "GRU"]


def train_and_export(
    folders: dict[str, Path],
    store: ModelStore,
    train_people: list[str] | None = None,
    kinds: tuple[str, ...] = ("gru", "attention"),
    cfg: TrainConfig | None = None,
    variants: int = 6,
) -> dict[str, Path]:
    """Build the embedding bank, train each head on ``train_people`` (default: all), export to ``store``."""
    from .temporal_data import build_bank

    bank = build_bank(folders, variants=variants)
    if train_people:
        missing = sorted(set(train_people) - set(bank.people))
        if missing:
            raise FacestreamError(f"training identities not in the data: {', '.join(missing[:5])}")
        bank = bank.select_people(train_people)
    out = {}
    for kind in kinds:
        model = train_head(kind, bank, cfg)
        used = cfg or TrainConfig()
        metrics = {"train_identities": len(bank.people), "train_sequences": used.steps * used.batch}
        out[kind] = export_to_store(kind, model, store, metrics).folder
        log.info("exported %s to %s", MODEL_NAMES[kind], out[kind])
    return out
