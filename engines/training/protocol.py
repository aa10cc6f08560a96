"""The training protocol behind ``facestream train``'s defaults: choose on validation, never on test.

1. Hold out ``cfg.val_split`` of the *training* images, stratified per person and seeded by ``cfg.seed``
   (ORL 5/5: one of each person's five training images).
2. Train one run per candidate augmentation level on the rest, up to ``cfg.epochs`` with early stopping
   (``cfg.patience``); each run's best epoch is its highest validation accuracy (ties: lower validation loss).
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

from .data import AUGMENT_LEVELS, FaceDataset, split_stratified

if TYPE_CHECKING:  # torch is imported by train_with_validation only, so the CLI can name these without it
    from .train import ProgressBar, TrainConfig

AUTO = "auto"  # --augment auto: choose the level on validation
AROUND_BEST = 2  # epochs either side of the chosen one that the schedule check compares against
DEFAULT_CANDIDATES = ("none", "pose", "strong")
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

    def summary(self) -> dict:
        return {
            "augment": self.augment,
            "epochs": self.epochs,
            "schedule_epochs": self.schedule_epochs,
            "annealed_check": self.annealed_check,
            "final": self.final,
            "val_files": self.val_files,
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
        if (r.val_accuracy, -r.val_loss) > (best.val_accuracy, -best.val_loss):
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
) -> ProtocolResult:
    """Choose the augmentation level and the epoch on a validation split of ``data``, then produce the final
    model in ``out_dir`` (see the module docstring). ``resume`` continues the runs already in ``out_dir``."""
    from .train import CHECKPOINT_BEST, CHECKPOINT_LAST, annotate_checkpoints, load_checkpoint, train

    if final not in FINALS:
        raise FacestreamError(f"unknown final model {final!r} (choose from: {', '.join(FINALS)})")
    if not 0.0 < cfg.val_split < 1.0:
        raise FacestreamError(
            "--augment auto chooses on a validation split: give --val-split between 0 and 1, or a fixed --augment"
        )
    out_dir = Path(out_dir)
    fit_idx, val_idx = split_stratified(data, cfg.val_split, cfg.seed)
    fit, val = data.subset(fit_idx), data.subset(val_idx)
    if len(val) == 0:
        raise FacestreamError("the validation split is empty: every person needs two or more training images")
    log = log or (lambda _msg: None)
    results = []
    for level in candidates:
        run = out_dir / SELECT_DIR / level
        log(f"candidate augment={level}: {len(fit)} images, validation {len(val)}")
        r = train(
            replace(cfg, augment=level, stop_epoch=0),
            fit,
            run,
            resume=_resumable(run, resume),
            progress=progress,
            data_source=data_source,
            device=device,
            val=val,
        )
        results.append(
            CandidateResult(level, r.best_epoch, r.epochs_run, r.best_val_accuracy, r.best_val_loss, r.train_seconds,
                            around_best(r.history, r.best_epoch))
        )
        log(f"candidate augment={level}: best epoch {r.best_epoch}, val accuracy {r.best_val_accuracy:.4f}")
    chosen = _pick(results)
    chosen_run = out_dir / SELECT_DIR / chosen.augment
    calibrated = load_checkpoint(chosen_run / CHECKPOINT_BEST)
    threshold = calibrated["unknown_threshold"]
    source = f"validation split ({len(val)} images, augment={chosen.augment} selection run)"
    seconds = sum(r.train_seconds for r in results)
    schedule, check = 0, None
    if final == "retrain":
        schedule, check, check_seconds = _choose_schedule(cfg, chosen, fit, val, out_dir, resume, progress,
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


def _choose_schedule(cfg, chosen: CandidateResult, fit, val, out_dir: Path, resume: bool, progress,
                     data_source: str, device: str, train) -> tuple[int, dict[str, float] | None, float]:
    """(the retrain's schedule length, the check run's validation scores, its seconds): ``chosen.best_epoch``
    (annealed) when a run annealed to end there scores on validation at least as well as the long schedule
    did around the chosen epoch, else ``cfg.epochs``. Nothing to check when the chosen epoch ends the schedule.

    Around, not at: the chosen epoch's own score is the best of every epoch the run had, so it is biased
    upwards against the check run's single last epoch (with 40 validation images one image is 2.5 %); the
    mean of the epochs within ``AROUND_BEST`` of it is what stopping there gives, judged on the same
    footing as the check."""
    if chosen.best_epoch >= cfg.epochs:
        return cfg.epochs, None, 0.0
    run = out_dir / SELECT_DIR / f"{chosen.augment}-annealed"
    r = train(replace(cfg, augment=chosen.augment, epochs=chosen.best_epoch, stop_epoch=0, patience=0), fit, run,
              resume=_resumable(run, resume), progress=progress, data_source=data_source, device=device, val=val)
    last = r.history[-1]
    check = {"val_accuracy": float(last["val_acc"]), "val_loss": float(last["val_loss"])}
    long_acc, long_loss = chosen.around_best or (chosen.val_accuracy, chosen.val_loss)
    annealed = (check["val_accuracy"], -check["val_loss"]) >= (long_acc, -long_loss)
    return (chosen.best_epoch if annealed else cfg.epochs), check, r.train_seconds


def _resumable(run: Path, resume: bool) -> Path | None:
    """``run`` when resuming and it holds a last checkpoint, else None (start that run afresh)."""
    from .train import CHECKPOINT_LAST  # torch: imported only when training

    return run if resume and (run / CHECKPOINT_LAST).is_file() else None
