"""The training protocol behind ``facestream train``'s defaults: choose on validation, never on test.

1. Hold out ``cfg.val_split`` of the *training* images, stratified per person and seeded by ``cfg.seed``
   (ORL 5/5: one of each person's five training images). With ``folds`` > 1 (``--val-folds``) the held-out
   images rotate over that many folds (``crossval``; 5 validates each ORL training image once).
2. Train one run per candidate augmentation level (per fold) on the rest, up to ``cfg.epochs`` with early
   stopping (``cfg.patience``); the best epoch is the highest validation accuracy (ties: lower validation
   loss), of the folds' mean curve when there are several.
3. The candidate with the best validation accuracy (ties: lower validation loss, then the earlier candidate,
   i.e. less augmentation) wins, with its best epoch.
4. ``final="retrain"`` (default): train again on all training images (validation images included) with the
   chosen level, stopping at the chosen epoch; that last epoch is the model. Which LR schedule the retrain
   follows is also decided on validation: a check run trains the chosen level once more on the same images
   with the cosine schedule compressed to end at the chosen epoch (annealed); when its last epoch scores at
   least as well on validation as the chosen epoch did (accuracy, ties: lower loss), the retrain anneals
   the same way, otherwise it follows the ``cfg.epochs``-long schedule and stops mid-way, as the chosen run
   did. ``final="best-val"``: keep the chosen run's best-on-validation checkpoint (trained without the
   validation images).

The test split never enters here: the caller scores the returned model once. The unknown threshold is
calibrated on the validation images by the chosen selection run (the retrained model has seen them, so its
own would be optimistic) and written into the final checkpoints with its source.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from facestream.errors import FacestreamError
from facestream.fsutil import atomic_write

from .crossval import best_of, fold_dir, mean_curve, train_folds_in_lockstep, val_rank
from .data import AUGMENT_LEVELS, FaceDataset, split_stratified_folds

if TYPE_CHECKING:  # torch is imported by train_with_validation only, so the CLI can name these without it
    from .train import ProgressBar, TrainConfig

AUTO = "auto"  # --augment auto: choose the level on validation
AROUND_BEST = 2  # epochs either side of the chosen one that the schedule check compares against
DEFAULT_CANDIDATES = ("none", "pose", "strong")
DEFAULT_FOLDS = 1  # --val-folds: 5 folds cost 5.5x on ORL and did not separate the candidates (classifiers_5fold.md)
FINALS = ("retrain", "best-val")
SELECT_DIR = "select"
PROTOCOL_FILE = "protocol.json"


@dataclass
class CandidateResult:
    augment: str
    best_epoch: int
    epochs_run: int
    val_accuracy: float
    val_loss: float
    train_seconds: float
    # mean validation (accuracy, loss) over the epochs within AROUND_BEST of best_epoch: what stopping near
    # there gives, without the winner's curse of the best epoch's own score (the maximum over every epoch)
    around_best: list[float] | None = None  # [accuracy, loss]: a list, as it reads back from JSON


@dataclass
class ProtocolResult:
    out_dir: Path
    augment: str
    epochs: int
    final: str
    val_files: list[str]
    candidates: list[CandidateResult]
    train_seconds: float
    unknown_threshold: float
    threshold_source: str
    history: list[dict[str, float]] = field(default_factory=list)
    schedule_epochs: int = 0  # the retrain's LR schedule length (== epochs: annealed; 0: no retrain)
    annealed_check: dict[str, float] | None = None  # the check run's last-epoch validation scores
    folds: int = 1
    val_folds: list[list[str]] = field(default_factory=list)  # every fold's validation files (fold 0 first)

    def summary(self) -> dict:
        return {
            "augment": self.augment,
            "epochs": self.epochs,
            "schedule_epochs": self.schedule_epochs,
            "annealed_check": self.annealed_check,
            "final": self.final,
            "folds": self.folds,
            "val_files": self.val_files,
            "val_folds": self.val_folds,
            "candidates": [asdict(c) for c in self.candidates],
        }


def parse_candidates(text: str) -> tuple[str, ...]:
    levels = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    bad = [lv for lv in levels if lv not in AUGMENT_LEVELS]
    if bad or not levels:
        raise FacestreamError(
            f"unknown augmentation candidate(s) {', '.join(bad) or '(none given)'} "
            f"(choose from: {', '.join(AUGMENT_LEVELS)})"
        )
    return levels


def _pick(results: list[CandidateResult]) -> CandidateResult:
    best = results[0]
    for r in results[1:]:  # strictly better only: ties keep the earlier (less augmented) candidate
        if val_rank(r.val_accuracy, r.val_loss) > val_rank(best.val_accuracy, best.val_loss):
            best = r
    return best


def train_with_validation(
    cfg: TrainConfig,
    data: FaceDataset,
    out_dir: str | Path,
    candidates: tuple[str, ...] = DEFAULT_CANDIDATES,
    final: str = "retrain",
    resume: bool = False,
    progress: ProgressBar | None = None,
    data_source: str = "",
    device: str = "cpu",
    log=None,
    folds: int = 1,
) -> ProtocolResult:
    """Choose the augmentation level and the epoch on a validation split of ``data``, then produce the final
    model in ``out_dir`` (see the module docstring). ``resume`` continues the runs already in ``out_dir``.
    ``folds`` > 1 rotates the validation split over that many folds and chooses on their mean curve
    (``crossval``)."""
    from .train import CHECKPOINT_BEST, CHECKPOINT_LAST, annotate_checkpoints, load_checkpoint, train

    if final not in FINALS:
        raise FacestreamError(f"unknown final model {final!r} (choose from: {', '.join(FINALS)})")
    if not 0.0 < cfg.val_split < 1.0:
        raise FacestreamError(
            "--augment auto chooses on a validation split: give --val-split between 0 and 1, or a fixed --augment"
        )
    if folds > 1 and final != "retrain":
        raise FacestreamError("--final best-val keeps one selection run's model: use it with --val-folds 1")
    out_dir = Path(out_dir)
    splits = [(data.subset(f), data.subset(v)) for f, v in split_stratified_folds(data, cfg.val_split, cfg.seed, folds)]
    fit, val = splits[0]
    if len(val) == 0:
        raise FacestreamError("the validation split is empty: every person needs two or more training images")
    log = log or (lambda _msg: None)
    kw = {"progress": progress, "data_source": data_source, "device": device}
    results = []
    for level in candidates:
        run = out_dir / SELECT_DIR / level
        log(f"candidate augment={level}: {len(fit)} images, validation {len(val)}"
            + (f", {folds} folds" if folds > 1 else ""))
        results.append(_select(cfg, level, splits, run, resume, train, kw))
        c = results[-1]
        log(f"candidate augment={level}: best epoch {c.best_epoch}, val accuracy {c.val_accuracy:.4f}")
    chosen = _pick(results)
    chosen_run = out_dir / SELECT_DIR / chosen.augment
    calibrated = load_checkpoint(fold_dir(chosen_run, 0, folds) / CHECKPOINT_BEST)
    threshold = calibrated["unknown_threshold"]
    source = (f"validation split ({len(val)} images, augment={chosen.augment} selection run"
              + (", fold 0)" if folds > 1 else ")"))
    seconds = sum(r.train_seconds for r in results)
    schedule, check = 0, None
    if final == "retrain":
        schedule, check, check_seconds = _choose_schedule(cfg, chosen, splits, out_dir, resume, progress,
                                                          data_source, device, train)
        seconds += check_seconds
        log(f"final: retrain on all {len(data)} images, augment={chosen.augment}, {chosen.best_epoch} epochs "
            f"of a {schedule}-epoch schedule")
        r = train(
            replace(cfg, augment=chosen.augment, val_split=0.0, epochs=schedule, stop_epoch=chosen.best_epoch),
            data,
            out_dir,
            resume=_resumable(out_dir, resume),
            progress=progress,
            data_source=data_source,
            device=device,
        )
        seconds += r.train_seconds
        history = r.history
    else:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in (CHECKPOINT_BEST, CHECKPOINT_LAST):
            shutil.copyfile(chosen_run / CHECKPOINT_BEST, out_dir / name)
        history = calibrated["history"]
    result = ProtocolResult(
        out_dir,
        chosen.augment,
        chosen.best_epoch,
        final,
        [str(f) for f in val.files],
        results,
        seconds,
        threshold,
        source,
        history,
        schedule,
        check,
        folds,
        [[str(f) for f in v.files] for _, v in splits],
    )
    annotate_checkpoints(
        out_dir,
        unknown_threshold=threshold,
        threshold_source=source,
        best_val_accuracy=chosen.val_accuracy,
        protocol=result.summary(),
    )
    atomic_write(out_dir / PROTOCOL_FILE, json.dumps(result.summary(), indent=2))
    return result


def around_best(history: list[dict[str, float]], best_epoch: int, half: int = AROUND_BEST) -> list[float] | None:
    """Mean validation [accuracy, loss] of the epochs within ``half`` of ``best_epoch`` (None: no scores)."""
    near = [h for h in history if "val_acc" in h and abs(int(h["epoch"]) - best_epoch) <= half]
    if not near:
        return None
    return [float(sum(h["val_acc"] for h in near) / len(near)), float(sum(h["val_loss"] for h in near) / len(near))]


def _select(cfg, level: str, splits, run: Path, resume: bool, train, kw: dict) -> CandidateResult:
    """One candidate's selection: a single run with early stopping, or the folds in lockstep."""
    if len(splits) == 1:
        fit, val = splits[0]
        r = train(replace(cfg, augment=level, stop_epoch=0), fit, run, resume=_resumable(run, resume), val=val, **kw)
        return CandidateResult(level, r.best_epoch, r.epochs_run, r.best_val_accuracy, r.best_val_loss,
                               r.train_seconds, around_best(r.history, r.best_epoch))
    runs = train_folds_in_lockstep(cfg, level, splits, run, resume, train, **kw)
    curve = mean_curve([r.history for r in runs])
    best = best_of(curve)
    epoch = int(best["epoch"])
    return CandidateResult(level, epoch, min(r.epochs_run for r in runs), best["val_acc"], best["val_loss"],
                           sum(r.train_seconds for r in runs), around_best(curve, epoch))


def _choose_schedule(cfg, chosen: CandidateResult, splits, out_dir: Path, resume: bool, progress,
                     data_source: str, device: str, train) -> tuple[int, dict[str, float] | None, float]:
    """(the retrain's schedule length, the check run's validation scores, its seconds): ``chosen.best_epoch``
    (annealed) when a run annealed to end there scores on validation at least as well as the long schedule
    did around the chosen epoch, else ``cfg.epochs``. Nothing to check when the chosen epoch ends the schedule.
    With several folds (``splits``: (fit, val) pairs) the check trains on each and its score is their mean.

    Around, not at: the chosen epoch's own score is the best of every epoch the run had, so it is biased
    upwards against the check run's single last epoch (with 40 validation images one image is 2.5 %); the
    mean of the epochs within ``AROUND_BEST`` of it is what stopping there gives, judged on the same
    footing as the check."""
    if chosen.best_epoch >= cfg.epochs:
        return cfg.epochs, None, 0.0
    run = out_dir / SELECT_DIR / f"{chosen.augment}-annealed"
    lasts, seconds = [], 0.0
    for k, (fit, val) in enumerate(splits):
        where = fold_dir(run, k, len(splits))
        r = train(replace(cfg, augment=chosen.augment, epochs=chosen.best_epoch, stop_epoch=0, patience=0), fit,
                  where, resume=_resumable(where, resume), progress=progress, data_source=data_source,
                  device=device, val=val)
        lasts.append(r.history[-1])
        seconds += r.train_seconds
    check = {"val_accuracy": float(sum(h["val_acc"] for h in lasts) / len(lasts)),
             "val_loss": float(sum(h["val_loss"] for h in lasts) / len(lasts))}
    long_acc, long_loss = chosen.around_best or (chosen.val_accuracy, chosen.val_loss)
    annealed = val_rank(check["val_accuracy"], check["val_loss"]) >= val_rank(long_acc, long_loss)
    return (chosen.best_epoch if annealed else cfg.epochs), check, seconds


def _resumable(run: Path, resume: bool) -> Path | None:
    """``run`` when resuming and it holds a last checkpoint, else None (start that run afresh)."""
    from .train import CHECKPOINT_LAST  # torch: imported only when training

    return run if resume and (run / CHECKPOINT_LAST).is_file() else None
