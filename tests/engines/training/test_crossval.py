"""K-fold selection: the folds rotate the held-out images, and the folds' mean curve chooses the epoch."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facestream.engines.training.crossval import best_of, mean_curve
from facestream.engines.training.data import split_stratified, split_stratified_folds
from facestream.errors import FacestreamError


def cfg(**kw):
    from facestream.engines.training.train import TrainConfig

    base = {"arch": "seed-attention", "epochs": 3, "batch_size": 8, "val_split": 0.25, "patience": 0}
    return TrainConfig(**{**base, **kw})


def quiet():
    import io

    from facestream.engines.training.train import ProgressBar

    return ProgressBar(io.StringIO())


def test_every_training_image_is_held_out_once_over_the_folds(tiny_dataset):
    splits = split_stratified_folds(tiny_dataset, 0.25, seed=3, folds=4)  # 8 images a person, 2 held out per fold
    held = np.concatenate([v for _, v in splits])
    assert sorted(held.tolist()) == list(range(len(tiny_dataset)))
    for fit, val in splits:
        assert not set(fit) & set(val) and len(fit) + len(val) == len(tiny_dataset)
        assert np.bincount(tiny_dataset.labels[val]).tolist() == [2, 2, 2]  # stratified


def test_fold_zero_is_the_single_split_and_folds_wrap_round(tiny_dataset):
    fit0, val0 = split_stratified(tiny_dataset, 0.25, 7)
    (fit, val), *_ = split_stratified_folds(tiny_dataset, 0.25, 7, folds=1)
    np.testing.assert_array_equal(fit, fit0)
    np.testing.assert_array_equal(val, val0)
    six = split_stratified_folds(tiny_dataset, 0.25, 7, folds=6)  # more folds than 8 / 2 runs: folds 4, 5 repeat 0, 1
    np.testing.assert_array_equal(six[4][1], six[0][1])
    assert len({tuple(v) for _, v in six}) == 4
    with pytest.raises(FacestreamError, match="--val-folds"):
        split_stratified_folds(tiny_dataset, 0.25, 7, folds=0)


def test_the_mean_curve_covers_the_epochs_every_fold_scored_and_picks_like_train():
    a = [{"epoch": e, "val_acc": acc, "val_loss": 1.0} for e, acc in [(1, 0.5), (2, 1.0), (3, 0.5)]]
    b = [{"epoch": e, "val_acc": acc, "val_loss": loss} for e, acc, loss in [(1, 0.5, 2.0), (2, 0.5, 1.0)]]
    curve = mean_curve([a, b])
    assert [h["epoch"] for h in curve] == [1, 2]
    assert curve[1]["val_acc"] == pytest.approx(0.75) and curve[0]["val_loss"] == pytest.approx(1.5)
    tie = [{"epoch": 1, "val_acc": 0.8, "val_loss": 0.5}, {"epoch": 2, "val_acc": 0.8, "val_loss": 0.4},
           {"epoch": 3, "val_acc": 0.8, "val_loss": 0.4}]
    assert best_of(tie)["epoch"] == 2  # equal accuracy: the lower loss, then the earlier epoch


def test_the_protocol_chooses_on_every_fold(tiny_dataset, tmp_path):
    torch = pytest.importorskip("torch")  # noqa: F841
    from facestream.engines.training.protocol import PROTOCOL_FILE, train_with_validation
    from facestream.engines.training.train import load_checkpoint

    res = train_with_validation(cfg(epochs=7, patience=0), tiny_dataset, tmp_path, ("none",), progress=quiet(),
                                folds=4)
    saved = json.loads((tmp_path / PROTOCOL_FILE).read_text())
    assert saved["folds"] == 4 and len(saved["val_folds"]) == 4
    assert sorted(f for v in saved["val_folds"] for f in v) == sorted(str(f) for f in tiny_dataset.files)
    histories = [load_checkpoint(tmp_path / "select" / "none" / f"fold-{k}" / "last.pt")["history"] for k in range(4)]
    assert all(len(h) == 7 for h in histories)  # in lockstep to the schedule's end (patience off)
    best = best_of(mean_curve(histories))
    assert res.epochs == best["epoch"] and res.candidates[0].val_accuracy == pytest.approx(best["val_acc"])
    assert load_checkpoint(tmp_path)["epoch"] == res.epochs
    assert "fold 0" in res.threshold_source


def test_several_folds_refuse_the_best_val_final(tiny_dataset, tmp_path):
    pytest.importorskip("torch")
    from facestream.engines.training.protocol import train_with_validation

    with pytest.raises(FacestreamError, match="--val-folds 1"):
        train_with_validation(cfg(), tiny_dataset, tmp_path, ("none",), final="best-val", folds=2)


def test_early_stopping_watches_the_mean_curve_and_stops_every_fold_together(tiny_dataset, tmp_path):
    pytest.importorskip("torch")
    from facestream.engines.training.crossval import LOCKSTEP_EPOCHS, train_folds_in_lockstep
    from facestream.engines.training.train import train

    splits = [(tiny_dataset.subset(f), tiny_dataset.subset(v)) for f, v in split_stratified_folds(tiny_dataset, 0.25, 0, 2)]
    runs = train_folds_in_lockstep(cfg(epochs=40, patience=2), "none", splits, tmp_path, False, train,
                                   progress=quiet())
    reached = {r.epochs_run for r in runs}
    assert len(reached) == 1  # the folds stop at the same epoch
    stop = reached.pop()
    best = int(best_of(mean_curve([r.history for r in runs]))["epoch"])
    assert stop == 40 or stop - best >= 2 and stop - best < 2 + LOCKSTEP_EPOCHS


def test_resume_reuses_every_finished_fold(tiny_dataset, tmp_path):
    pytest.importorskip("torch")
    from facestream.engines.training.protocol import train_with_validation

    first = train_with_validation(cfg(epochs=2), tiny_dataset, tmp_path, ("none",), progress=quiet(), folds=2)
    again = train_with_validation(cfg(epochs=2), tiny_dataset, tmp_path, ("none",), resume=True, progress=quiet(),
                                  folds=2)
    assert (again.augment, again.epochs) == (first.augment, first.epochs)
    assert again.train_seconds == pytest.approx(first.train_seconds)  # nothing was trained again


def test_lockstep_looks_for_the_checkpoint_train_writes():
    pytest.importorskip("torch")
    from facestream.engines.training.crossval import LAST
    from facestream.engines.training.train import CHECKPOINT_LAST

    assert LAST == CHECKPOINT_LAST
