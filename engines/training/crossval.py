"""K-fold selection for the training protocol (``--val-folds K``): the held-out training images rotate.

With ORL 5/5 one validation split is 40 images, so accuracy moves in 2.5 % steps and the chosen epoch rides
on one or two images; 5 folds validate each of the 200 training images once (200 predictions per epoch) at
five times the cost. The folds (``data.split_stratified_folds``) train in lockstep, a few epochs at a time,
and early stopping watches their mean validation curve, so every fold stops at the same epoch. Nothing here
imports torch: the training function is passed in by ``protocol``. Measured on ORL, the folds did not
separate the candidates (bench/results/classifiers_5fold.md), so one split stays the default."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from facestream.errors import FacestreamError

from .data import FaceDataset

LOCKSTEP_EPOCHS = 5  # epochs every fold trains before the mean curve is looked at again
LAST = "last.pt"  # train.CHECKPOINT_LAST (train imports torch; a test checks they match)


def val_rank(accuracy: float, loss: float) -> tuple[float, float]:
    """How every choice in the protocol ranks validation scores: accuracy, ties the lower loss."""
    return accuracy, -loss


def mean_curve(histories: list[list[dict]]) -> list[dict[str, float]]:
    """The folds' mean validation accuracy and loss for each epoch that every fold has scored."""
    scored = [{int(h["epoch"]): h for h in hist if "val_acc" in h} for hist in histories]
    common = sorted(set.intersection(*(set(s) for s in scored))) if scored else []
    return [
        {
            "epoch": e,
            "val_acc": float(np.mean([s[e]["val_acc"] for s in scored])),
            "val_loss": float(np.mean([s[e]["val_loss"] for s in scored])),
        }
        for e in common
    ]


def best_of(curve: list[dict[str, float]]) -> dict[str, float]:
    """The curve's best epoch: highest accuracy, ties the lower loss, then the earlier epoch (as ``train``)."""
    if not curve:
        raise FacestreamError("no validation scores to choose an epoch from")
    best = curve[0]
    for h in curve[1:]:
        if val_rank(h["val_acc"], h["val_loss"]) > val_rank(best["val_acc"], best["val_loss"]):
            best = h
    return best


def fold_dir(run: Path, fold: int, folds: int) -> Path:
    """Where fold ``fold`` trains: ``run`` itself with one fold, ``run/fold-K`` with several."""
    return run if folds == 1 else run / f"fold-{fold}"


def train_folds_in_lockstep(cfg, level: str, splits: list[tuple[FaceDataset, FaceDataset]], run: Path,
                            resume: bool, train, **train_kw) -> list:
    """Train ``level`` on every fold of ``splits`` ((fit, val) datasets) up to ``cfg.epochs``, stopping all
    of them once the mean validation curve has not improved for ``cfg.patience`` epochs (0: never). Returns
    each fold's last ``TrainResult``. ``resume`` continues runs already in ``run``."""
    folds = len(splits)
    done, results = 0, []
    while done < cfg.epochs:
        continuing = resume or done > 0  # the first pass starts afresh unless resuming
        done = min(done + LOCKSTEP_EPOCHS, cfg.epochs)
        results = []
        for k, (fit, val) in enumerate(splits):
            where = fold_dir(run, k, folds)
            again = continuing and (where / LAST).is_file()
            results.append(train(replace(cfg, augment=level, stop_epoch=done, patience=0), fit, where,
                                 resume=where if again else None, val=val, **train_kw))
        reached = min(r.epochs_run for r in results)
        done = max(done, reached)  # resumed runs may already be further on
        best = best_of(mean_curve([r.history for r in results]))
        if cfg.patience and reached - int(best["epoch"]) >= cfg.patience:
            break
    return results
