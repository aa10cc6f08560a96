"""The training loop on tiny synthetic data: loss falls, checkpoints resume exactly, early stopping."""

from __future__ import annotations

import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from facestream.engines.training.train import (  # noqa: E402
    CHECKPOINT_BEST,
    CHECKPOINT_LAST,
    ProgressBar,
    TrainConfig,
    calibrate_unknown_threshold,
    load_checkpoint,
    loss_fn,
    train,
)
from facestream.errors import FacestreamError  # noqa: E402


def quiet() -> ProgressBar:
    return ProgressBar(io.StringIO())


@pytest.mark.parametrize("arch", ["seed-cnn", "seed-lstm", "seed-attention", "cosface"])
def test_loss_decreases(arch, tiny_dataset, tmp_path):
    cfg = TrainConfig(arch=arch, epochs=3, batch_size=12, val_split=0, augment="none", lr=1e-3)
    res = train(cfg, tiny_dataset, tmp_path, progress=quiet())
    losses = [h["loss"] for h in res.history]
    assert losses[-1] < losses[0]


def test_mse_loss_is_squared_error_of_probabilities():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(128 * 128, 3))
    x, y = torch.rand(4, 1, 128, 128), torch.tensor([0, 1, 2, 0])
    loss, logits = loss_fn(model, x, y, "mse")
    expected = ((torch.softmax(logits, 1) - torch.nn.functional.one_hot(y, 3)) ** 2).mean()
    torch.testing.assert_close(loss, expected)


def test_mse_gradient_vanishes_where_cross_entropy_does_not():
    """Why cross-entropy wins: with a confidently wrong softmax, MSE's gradient all but vanishes."""
    logits = torch.tensor([[12.0, 0.0, 0.0]], requires_grad=True)  # sure of class 0
    target = torch.tensor([2])  # the truth is class 2
    mse = ((torch.softmax(logits, 1) - torch.nn.functional.one_hot(target, 3)) ** 2).mean()
    (g_mse,) = torch.autograd.grad(mse, logits)
    (g_ce,) = torch.autograd.grad(torch.nn.functional.cross_entropy(logits, target), logits)
    assert g_ce.abs().max() > 0.9
    assert g_mse.abs().max() < 1e-4


def test_cosface_rejects_mse(tiny_dataset, tmp_path):
    cfg = TrainConfig(arch="cosface", epochs=1, batch_size=8, val_split=0, loss="mse")
    with pytest.raises(FacestreamError, match="margin loss"):
        train(cfg, tiny_dataset, tmp_path, progress=quiet())


class InterruptAt(ProgressBar):
    """Stops training at the first batch of ``epoch``, as Ctrl-C or a killed job would."""

    def __init__(self, epoch: int):
        super().__init__(io.StringIO())
        self.at = epoch

    def step(self, epoch, epochs, done, total, loss):
        if epoch == self.at:
            raise KeyboardInterrupt


def test_resume_continues_exactly(tiny_dataset, tmp_path):
    """Interrupted in epoch 3 and resumed == 4 epochs straight (augmentation, dropout and LR schedule)."""
    cfg = TrainConfig(arch="patch-transformer", epochs=4, batch_size=8, val_split=0.25, patience=0, seed=3)
    train(cfg, tiny_dataset, tmp_path / "straight", progress=quiet())
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tiny_dataset, tmp_path / "resumed", progress=InterruptAt(3))
    assert load_checkpoint(tmp_path / "resumed" / CHECKPOINT_LAST)["epoch"] == 2
    res = train(cfg, tiny_dataset, tmp_path / "resumed", resume=tmp_path / "resumed", progress=quiet())
    assert [h["epoch"] for h in res.history] == [1, 2, 3, 4]
    a = load_checkpoint(tmp_path / "straight" / CHECKPOINT_LAST)["state_dict"]
    b = load_checkpoint(tmp_path / "resumed" / CHECKPOINT_LAST)["state_dict"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)


def test_resume_refuses_another_arch(tiny_dataset, tmp_path):
    train(TrainConfig(arch="seed-attention", epochs=1, val_split=0), tiny_dataset, tmp_path, progress=quiet())
    with pytest.raises(FacestreamError, match="is a seed-attention model, not cnn-bn"):
        train(TrainConfig(arch="cnn-bn", epochs=2), tiny_dataset, tmp_path, resume=tmp_path, progress=quiet())


def test_early_stopping_and_checkpoints(tiny_dataset, tmp_path):
    cfg = TrainConfig(arch="seed-attention", epochs=20, batch_size=8, val_split=0.25, patience=2, lr=0.0)
    res = train(cfg, tiny_dataset, tmp_path, progress=quiet())
    assert res.epochs_run == 3  # lr 0: no epoch beats the first, stop after 2 stale ones
    assert res.best_epoch == 1
    assert (tmp_path / CHECKPOINT_BEST).is_file() and (tmp_path / CHECKPOINT_LAST).is_file()
    ckpt = load_checkpoint(tmp_path)
    assert ckpt["epoch"] == 1 and ckpt["threshold_source"] == "validation split"
    assert 0.0 <= ckpt["unknown_threshold"] <= 1.0


def test_progress_bar_writes_plain_text(tiny_dataset, tmp_path):
    buf = io.StringIO()
    train(
        TrainConfig(arch="seed-attention", epochs=2, val_split=0),
        tiny_dataset,
        tmp_path,
        progress=ProgressBar(buf),
    )
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2 [") and "loss" in lines[0]


def test_seeded_runs_repeat(tiny_dataset, tmp_path):
    cfg = TrainConfig(arch="seed-attention", epochs=2, batch_size=8, val_split=0, seed=5)
    a = train(cfg, tiny_dataset, tmp_path / "a", progress=quiet()).history
    b = train(cfg, tiny_dataset, tmp_path / "b", progress=quiet()).history
    assert [h["loss"] for h in a] == [h["loss"] for h in b]


def test_threshold_accepts_most_known_faces():
    rng = np.random.default_rng(0)
    labels = np.arange(100) % 4
    probs = rng.dirichlet(np.ones(4) * 0.3, size=100)
    probs[np.arange(100), labels] += 1.0
    probs /= probs.sum(1, keepdims=True)
    t = calibrate_unknown_threshold(probs, labels, accept=0.9)
    accepted = probs.max(1)[probs.argmax(1) == labels] >= t
    assert 0.88 <= accepted.mean() <= 0.95


class _RunsCodeWhenUnpickled:
    """A checkpoint payload that would run code on load if the loader unpickled arbitrary objects."""

    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path(__import__('os').environ['PWNED']).write_text('x')",))


def test_checkpoint_with_code_objects_is_refused_not_executed(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("PWNED", str(marker))
    path = tmp_path / "evil.pt"
    torch.save({"arch": "seed-cnn", "classes": ["a"], "state_dict": {}, "payload": _RunsCodeWhenUnpickled()}, path)
    with pytest.raises(FacestreamError, match="is not a facestream checkpoint"):
        load_checkpoint(path)
    assert not marker.exists()
