"""The training loop: seedable, resumable (checkpoint every epoch), early stopping on a validation split.

One run of one configuration; choosing the configuration (augmentation level, epochs) on validation is
``protocol.train_with_validation``. The best epoch is the highest validation accuracy, ties broken by the
lower validation cross-entropy (with 40 validation images accuracy moves in 2.5% steps and ties are common).

Runs are reproducible: each epoch's shuffling, augmentation and dropout draw from RNGs seeded by
(seed, epoch), so a resumed run continues exactly where an uninterrupted one would be.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facestream.errors import FacestreamError
from facestream.fsutil import atomic_open

from .architectures import build_model, is_embedding_model
from .crossval import val_rank
from .data import FaceDataset, make_augmenter, split_stratified

LOSSES = ("ce", "mse")
CHECKPOINT_LAST = "last.pt"
CHECKPOINT_BEST = "best.pt"
ACCEPT_KNOWN = 0.95  # the unknown threshold accepts this share of correctly recognised validation faces


@dataclass
class TrainConfig:
    arch: str
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 0
    loss: str = "ce"
    val_split: float = 0.1
    patience: int = 10  # epochs without validation improvement before stopping; 0 = never stop early
    augment: str = "strong"  # none | mild | strong (see data.make_augmenter)
    weight_decay: float = 1e-4
    stop_epoch: int = 0  # stop after this epoch of the ``epochs``-long LR schedule (0: run it all)


@dataclass
class TrainResult:
    out_dir: Path
    epochs_run: int
    best_epoch: int
    best_val_accuracy: float | None
    best_val_loss: float | None
    train_seconds: float
    unknown_threshold: float
    threshold_source: str
    history: list[dict[str, float]] = field(default_factory=list)


class ProgressBar:
    """Plain-text progress on stderr: redrawn in place on a terminal, one line per epoch otherwise."""

    def __init__(self, stream: TextIO | None = None, width: int = 24):
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty()

    def step(self, epoch: int, epochs: int, done: int, total: int, loss: float) -> None:
        if not self.live:
            return
        filled = int(self.width * done / max(1, total))
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\repoch {epoch}/{epochs} [{bar}] {done}/{total} loss {loss:.4f}")
        self.stream.flush()

    def epoch(self, epoch: int, epochs: int, stats: dict[str, float]) -> None:
        parts = " ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in stats.items())
        prefix = "\r" if self.live else ""
        self.stream.write(f"{prefix}epoch {epoch}/{epochs} [{'#' * self.width}] {parts}\n")
        self.stream.flush()


def loss_fn(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, logits). 'ce' = cross-entropy on logits (CosFace margin for embedding models); 'mse' = the
    recipe's alternative: squared error between the softmax output and the one-hot target."""
    if is_embedding_model(model):
        if loss != "ce":
            raise FacestreamError("the cosface embedding model trains with its margin loss; use --loss ce")
        margin_logits = model.cosface_logits(x, y)
        return F.cross_entropy(margin_logits, y), margin_logits
    logits = model(x)
    if loss == "ce":
        return F.cross_entropy(logits, y), logits
    if loss == "mse":
        target = F.one_hot(y, logits.shape[1]).to(logits.dtype)
        return F.mse_loss(torch.softmax(logits, dim=1), target), logits
    raise FacestreamError(f"unknown loss {loss!r} (choose from: {', '.join(LOSSES)})")


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def _predict(model: nn.Module, images: np.ndarray, head: Callable[[torch.Tensor], torch.Tensor],
             batch_size: int) -> list[np.ndarray]:
    """``head`` over (N, 128, 128) images in batches, in eval mode, on the model's device."""
    model.eval()
    device = _device_of(model)
    out = []
    for i in range(0, len(images), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(images[i : i + batch_size], dtype=np.float32))[:, None]
        out.append(head(x.to(device)).cpu().numpy())
    return out


def predict_probs(model: nn.Module, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Softmax probabilities (N, classes) for (N, 128, 128) images, in eval mode."""
    out = _predict(model, images, lambda x: torch.softmax(model(x), dim=1), batch_size)
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def predict_embeddings(model: nn.Module, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """The embedding model's L2-normalised embeddings (N, D) for (N, 128, 128) images, in eval mode."""
    return np.concatenate(_predict(model, images, model.embed, batch_size))


def calibrate_unknown_threshold(probs: np.ndarray, labels: np.ndarray, accept: float = ACCEPT_KNOWN) -> float:
    """Confidence below which a face is 'unknown': the (1 - accept) quantile of the top probability over
    correctly recognised faces, so ``accept`` of known faces pass. Rounded down to 4 decimals."""
    top = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    scores = top[correct] if correct.any() else top
    if scores.size == 0:
        return 0.5
    return float(math.floor(float(np.quantile(scores, 1.0 - accept)) * 1e4) / 1e4)


def _save(obj: dict[str, Any], path: Path) -> None:
    with atomic_open(path) as f:
        torch.save(obj, f)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint file, or a run folder (its best.pt, else last.pt)."""
    path = Path(path)
    if path.is_dir():
        for name in (CHECKPOINT_BEST, CHECKPOINT_LAST):
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise FacestreamError(f"run folder {path} has no {CHECKPOINT_BEST} or {CHECKPOINT_LAST}")
    if not path.is_file():
        raise FacestreamError(f"checkpoint {path} does not exist")
    try:  # weights only: a checkpoint is user-supplied, and unpickling arbitrary objects runs arbitrary code
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is the same user error
        raise FacestreamError(f"{path} is not a facestream checkpoint ({type(exc).__name__})") from exc
    if not isinstance(ckpt, dict) or "arch" not in ckpt or "state_dict" not in ckpt:
        raise FacestreamError(f"{path} is not a facestream checkpoint (no arch/state_dict)")
    ckpt["path"] = str(path)
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any]) -> nn.Module:
    model = build_model(ckpt["arch"], len(ckpt["classes"]))
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model


def _evaluate(model: nn.Module, ds: FaceDataset) -> tuple[float, float]:
    """(accuracy, mean cross-entropy of the softmax output) on ``ds``."""
    probs = predict_probs(model, ds.images)
    true = probs[np.arange(len(ds.labels)), ds.labels]
    loss = float(-np.log(np.clip(true, 1e-12, 1.0)).mean())
    return float((probs.argmax(axis=1) == ds.labels).mean()), loss


def annotate_checkpoints(out_dir: str | Path, **fields: Any) -> None:
    """Add ``fields`` to the run's best.pt and last.pt (what the protocol learnt after the run)."""
    for name in (CHECKPOINT_BEST, CHECKPOINT_LAST):
        path = Path(out_dir) / name
        if not path.is_file():
            continue
        ck = load_checkpoint(path)
        ck.pop("path", None)
        ck.update(fields)
        _save(ck, path)


def train(
    cfg: TrainConfig,
    data: FaceDataset,
    out_dir: str | Path,
    resume: str | Path | None = None,
    progress: ProgressBar | None = None,
    data_source: str = "",
    device: str = "cpu",
    val: FaceDataset | None = None,
) -> TrainResult:
    """Train ``cfg.arch`` on ``data`` writing last.pt / best.pt into ``out_dir``; ``resume`` continues a run.
    ``val`` is the validation set (default: ``cfg.val_split`` of ``data``, stratified, seeded by cfg.seed).
    ``device`` ("cpu", "cuda") is where the model trains; checkpoints always hold CPU tensors."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    progress = progress or ProgressBar()
    state: dict[str, Any] | None = None
    if resume is not None:
        state = load_checkpoint(Path(resume) / CHECKPOINT_LAST if Path(resume).is_dir() else resume)
        if state["arch"] != cfg.arch:
            raise FacestreamError(f"checkpoint {resume} is a {state['arch']} model, not {cfg.arch}")
        if state["classes"] != data.classes:
            raise FacestreamError(
                f"checkpoint {resume} was trained on other classes than {data_source or 'this data'}"
            )
        saved = state["config"]
        cfg = TrainConfig(
            **{**saved, "epochs": cfg.epochs, "patience": cfg.patience, "stop_epoch": cfg.stop_epoch}
        )
    if cfg.loss not in LOSSES:
        raise FacestreamError(f"unknown loss {cfg.loss!r} (choose from: {', '.join(LOSSES)})")
    if cfg.epochs < 1 or cfg.batch_size < 2:
        raise FacestreamError("--epochs must be >= 1 and --batch-size >= 2")

    if val is not None:
        train_ds, val_ds = data, val
    elif cfg.val_split > 0:
        tr_idx, val_idx = split_stratified(data, cfg.val_split, cfg.seed)
        train_ds, val_ds = data.subset(tr_idx), data.subset(val_idx)
    else:
        train_ds, val_ds = data, None

    torch.manual_seed(cfg.seed)
    model = build_model(cfg.arch, len(data.classes)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    start_epoch, best_acc, best_epoch, stale, history, elapsed = 0, -1.0, 0, 0, [], 0.0
    best_loss = math.inf
    if state is not None:
        model.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, best_acc, best_epoch = state["epoch"], state["best_val_accuracy"], state["best_epoch"]
        stale, history, elapsed = state["stale_epochs"], state["history"], state["train_seconds"]
        best_loss = state.get("best_val_loss", math.inf)
    augment = make_augmenter(cfg.augment)

    def checkpoint(epoch: int) -> dict[str, Any]:
        return {
            "arch": cfg.arch,
            "classes": data.classes,
            "config": asdict(cfg),
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizer": optimizer.state_dict(),
            "epoch": epoch,
            "best_val_accuracy": best_acc,
            "best_epoch": best_epoch,
            "best_val_loss": best_loss,
            "stale_epochs": stale,
            "history": history,
            "train_seconds": elapsed,
            "data_source": data_source,
        }

    n = len(train_ds)
    epoch = start_epoch
    last_epoch = min(cfg.stop_epoch, cfg.epochs) if cfg.stop_epoch > 0 else cfg.epochs
    for epoch in range(start_epoch + 1, last_epoch + 1):
        if cfg.patience and val_ds is not None and stale >= cfg.patience:
            epoch -= 1
            break
        t0 = time.perf_counter()
        rng = np.random.default_rng([cfg.seed, epoch])
        torch.manual_seed(cfg.seed * 100_003 + epoch)
        for group in optimizer.param_groups:  # cosine decay, a pure function of the epoch (resume-safe)
            group["lr"] = cfg.lr * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / cfg.epochs))
        model.train()
        order = rng.permutation(n)
        batches = [order[i : i + cfg.batch_size] for i in range(0, n, cfg.batch_size)]
        if len(batches) > 1 and len(batches[-1]) == 1:  # batch norm cannot train on a single sample
            batches = batches[:-1]
        total_loss, correct, seen = 0.0, 0, 0
        for b, idx in enumerate(batches, 1):
            imgs = train_ds.images[idx]
            if augment is not None:
                imgs = augment.batch(imgs, rng)
            x = torch.from_numpy(np.ascontiguousarray(imgs, dtype=np.float32))[:, None].to(device)
            y = torch.from_numpy(train_ds.labels[idx]).to(device)
            loss, logits = loss_fn(model, x, y, cfg.loss)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(idx)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(idx)
            progress.step(epoch, cfg.epochs, b, len(batches), total_loss / seen)
        stats: dict[str, Any] = {"loss": total_loss / seen, "train_acc": correct / seen}
        if val_ds is not None:
            stats["val_acc"], stats["val_loss"] = _evaluate(model, val_ds)
            improved = val_rank(stats["val_acc"], stats["val_loss"]) > val_rank(best_acc, best_loss)
        else:
            improved = True
        elapsed += time.perf_counter() - t0
        stats["seconds"] = time.perf_counter() - t0
        history.append({"epoch": epoch, **stats})
        if improved:
            best_acc, best_loss = stats.get("val_acc", best_acc), stats.get("val_loss", best_loss)
            best_epoch, stale = epoch, 0
            _save(checkpoint(epoch), out_dir / CHECKPOINT_BEST)
        else:
            stale += 1
        _save(checkpoint(epoch), out_dir / CHECKPOINT_LAST)
        progress.epoch(epoch, cfg.epochs, stats)

    best = load_checkpoint(out_dir / CHECKPOINT_BEST)
    model.load_state_dict(best["state_dict"])
    calib = val_ds if val_ds is not None else train_ds
    source = "validation split" if val_ds is not None else "training images (no validation split; optimistic)"
    threshold = calibrate_unknown_threshold(predict_probs(model, calib.images), calib.labels)
    annotate_checkpoints(out_dir, unknown_threshold=threshold, threshold_source=source)
    return TrainResult(
        out_dir=out_dir,
        epochs_run=epoch,
        best_epoch=best_epoch,
        best_val_accuracy=best_acc if val_ds is not None else None,
        best_val_loss=best_loss if val_ds is not None else None,
        train_seconds=elapsed,
        unknown_threshold=threshold,
        threshold_source=source,
        history=history,
    )
