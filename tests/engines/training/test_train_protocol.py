"""The default training protocol: augmentation and epochs chosen on a validation split, then retrained."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from facestream.engines.training.data import apply_split, load_image_folder  # noqa: E402
from facestream.engines.training.protocol import (  # noqa: E402
    PROTOCOL_FILE,
    CandidateResult,
    _pick,
    parse_candidates,
    train_with_validation,
)
from facestream.engines.training.train import ProgressBar, TrainConfig, load_checkpoint, train  # noqa: E402
from facestream.errors import FacestreamError  # noqa: E402
from facestream.pipeline.cli import main  # noqa: E402


def quiet() -> ProgressBar:
    import io

    return ProgressBar(io.StringIO())


def cfg(**kw) -> TrainConfig:
    base = {"arch": "seed-attention", "epochs": 3, "batch_size": 8, "val_split": 0.25, "patience": 0}
    return TrainConfig(**{**base, **kw})


def test_chooses_the_best_candidate_on_validation_and_retrains_on_everything(tiny_dataset, tmp_path):
    res = train_with_validation(cfg(), tiny_dataset, tmp_path, ("none", "pose"), progress=quiet())
    by_level = {c.augment: c for c in res.candidates}
    assert set(by_level) == {"none", "pose"}
    best = max(res.candidates, key=lambda c: (c.val_accuracy, -c.val_loss))
    assert res.augment == best.augment and res.epochs == best.best_epoch
    assert len(res.val_files) == 6  # 2 of each person's 8 images

    final = load_checkpoint(tmp_path)
    assert final["config"]["augment"] == res.augment and final["config"]["stop_epoch"] == res.epochs
    assert final["config"]["val_split"] == 0.0 and final["epoch"] == res.epochs
    assert final["threshold_source"].startswith("validation split (6 images")
    saved = json.loads((tmp_path / PROTOCOL_FILE).read_text())
    assert saved["augment"] == res.augment and final["protocol"] == saved
    for level in ("none", "pose"):
        sel = load_checkpoint(tmp_path / "select" / level)
        assert sel["config"]["augment"] == level and sel["epoch"] == 3


def test_best_val_final_keeps_the_selection_model(tiny_dataset, tmp_path):
    res = train_with_validation(cfg(epochs=2), tiny_dataset, tmp_path, ("none",), final="best-val", progress=quiet())
    final, chosen = load_checkpoint(tmp_path), load_checkpoint(tmp_path / "select" / "none" / "best.pt")
    assert res.final == "best-val" and final["epoch"] == chosen["epoch"] == res.epochs
    for k, v in chosen["state_dict"].items():
        assert torch.equal(v, final["state_dict"][k])


def test_ties_keep_the_earlier_less_augmented_candidate():
    same = [CandidateResult(level, 5, 10, 0.9, 0.3, 1.0) for level in ("none", "pose", "strong")]
    assert _pick(same).augment == "none"
    better_loss = [*same[:2], CandidateResult("strong", 5, 10, 0.9, 0.2, 1.0)]
    assert _pick(better_loss).augment == "strong"
    assert _pick([*same[:1], CandidateResult("pose", 5, 10, 0.95, 0.9, 1.0)]).augment == "pose"


def test_stopping_early_follows_the_full_schedule(tiny_dataset, tmp_path):
    """Retraining for the chosen k epochs of an N-epoch schedule repeats the first k epochs of the N run."""
    full = train(cfg(epochs=4, val_split=0), tiny_dataset, tmp_path / "full", progress=quiet())
    cut = train(cfg(epochs=4, val_split=0, stop_epoch=2), tiny_dataset, tmp_path / "cut", progress=quiet())
    assert cut.epochs_run == 2
    assert [h["loss"] for h in cut.history] == pytest.approx([h["loss"] for h in full.history[:2]])


def test_resume_reuses_finished_runs(tiny_dataset, tmp_path):
    first = train_with_validation(cfg(epochs=2), tiny_dataset, tmp_path, ("none", "mild"), progress=quiet())
    again = train_with_validation(
        cfg(epochs=2), tiny_dataset, tmp_path, ("none", "mild"), resume=True, progress=quiet()
    )
    assert again.augment == first.augment and again.epochs == first.epochs
    assert again.train_seconds == pytest.approx(first.train_seconds)  # nothing was trained again


def test_needs_a_validation_split_and_known_levels(tiny_dataset, tmp_path):
    with pytest.raises(FacestreamError, match="validation split"):
        train_with_validation(cfg(val_split=0), tiny_dataset, tmp_path)
    with pytest.raises(FacestreamError, match="unknown augmentation candidate"):
        parse_candidates("none,heavy")
    assert parse_candidates(" pose, none,pose") == ("pose", "none")


def test_cli_default_is_the_protocol_and_never_sees_the_test_split(image_folder, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--arch", "seed-attention", "--data", str(image_folder), "--split", "orl"]
    assert main([*args, "--epochs", "2", "--augment-candidates", "none,pose", "--out", str(run)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(summary["candidates"]) == {"none", "pose"} and summary["augment"] in ("none", "pose")
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    _, test = apply_split(load_image_folder(image_folder), "orl")
    saved = json.loads((run / PROTOCOL_FILE).read_text())
    assert summary["folds"] == saved["folds"] == 1 and saved["val_folds"] == [saved["val_files"]]
    val_files = set(saved["val_files"])
    assert len(val_files) == 3 and not val_files & {str(f) for f in test.files}

    folds = tmp_path / "folds"
    assert main([*args, "--epochs", "2", "--augment-candidates", "none", "--val-folds", "5", "--out", str(folds)]) == 0
    saved = json.loads((folds / PROTOCOL_FILE).read_text())
    val_files = {f for fold in saved["val_folds"] for f in fold}
    train_part, _ = apply_split(load_image_folder(image_folder), "orl")
    assert saved["folds"] == 5 and set(saved["val_files"]) <= val_files  # every training image validated once
    assert val_files == {str(f) for f in train_part.files} and not val_files & {str(f) for f in test.files}
    capsys.readouterr()

    assert main([*args, "--val-split", "0", "--out", str(tmp_path / "x")]) == 2
    assert "chooses on a validation split" in capsys.readouterr().err
    assert np.isfinite(summary["unknown_threshold"])


def test_the_retrain_schedule_is_chosen_on_validation(tiny_dataset, tmp_path):
    """A chosen epoch before the schedule's end: a check run annealed to end there decides, on validation,
    whether the retrain anneals too; the final model's schedule is the one recorded."""
    res = train_with_validation(cfg(epochs=6), tiny_dataset, tmp_path, ("none",), progress=quiet())
    saved = json.loads((tmp_path / PROTOCOL_FILE).read_text())
    final = load_checkpoint(tmp_path)
    assert final["config"]["epochs"] == res.schedule_epochs == saved["schedule_epochs"]
    assert final["epoch"] == res.epochs
    if res.epochs == 6:
        assert res.schedule_epochs == 6 and res.annealed_check is None
        return
    check = load_checkpoint(tmp_path / "select" / "none-annealed")
    assert check["config"]["epochs"] == res.epochs and check["epoch"] == res.epochs
    chosen = res.candidates[0]
    long_acc, long_loss = chosen.around_best
    annealed = (res.annealed_check["val_accuracy"], -res.annealed_check["val_loss"]) >= (long_acc, -long_loss)
    assert res.schedule_epochs == (res.epochs if annealed else 6)


def test_schedule_rule_prefers_the_annealed_run_only_when_validation_says_so(tmp_path):
    from facestream.engines.training.protocol import _choose_schedule

    def fake_train(acc: float, loss: float):  # the decision rule alone; the real runs are tested above
        def run(c, *a, **k):
            assert c.epochs == 4 and c.patience == 0
            return type("R", (), {"history": [{"val_acc": acc, "val_loss": loss}], "train_seconds": 1.0})()
        return run

    chosen = CandidateResult("pose", 4, 10, 0.9, 0.5, 1.0)
    args = (cfg(epochs=10), chosen, [(None, None)], tmp_path, False, None, "", "cpu")
    assert _choose_schedule(*args, fake_train(0.9, 0.4))[0] == 4  # tie on accuracy, lower loss: anneal
    assert _choose_schedule(*args, fake_train(0.95, 0.9))[0] == 4
    assert _choose_schedule(*args, fake_train(0.85, 0.1))[0] == 10  # worse on validation: the long schedule
    # the long schedule judged around its chosen epoch, not by that epoch's best-of-all score
    near = CandidateResult("pose", 4, 10, 0.9, 0.5, 1.0, (0.85, 0.6))
    near_args = (cfg(epochs=10), near, [(None, None)], tmp_path, False, None, "", "cpu")
    assert _choose_schedule(*near_args, fake_train(0.875, 0.7))[0] == 4
    assert _choose_schedule(*near_args, fake_train(0.825, 0.1))[0] == 10
    done = CandidateResult("pose", 10, 10, 0.9, 0.5, 1.0)
    assert _choose_schedule(cfg(epochs=10), done, [(None, None)], tmp_path, False, None, "", "cpu", None)[0] == 10


def test_around_best_averages_the_epochs_next_to_the_chosen_one():
    from facestream.engines.training.protocol import around_best

    history = [{"epoch": e, "val_acc": a, "val_loss": 1.0 / e, "loss": 0.1} for e, a in
               zip(range(1, 9), [0.5, 0.6, 0.7, 0.8, 1.0, 0.8, 0.7, 0.6], strict=True)]
    acc, loss = around_best(history, 5)
    assert acc == pytest.approx((0.7 + 0.8 + 1.0 + 0.8 + 0.7) / 5)
    assert loss == pytest.approx(sum(1.0 / e for e in range(3, 8)) / 5)
    assert around_best(history, 1, half=1)[0] == pytest.approx(0.55)  # clipped at the first epoch
    assert around_best([{"epoch": 1, "loss": 0.3}], 1) is None  # no validation scores
