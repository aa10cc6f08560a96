"""facestream train / export / eval end to end on a tiny synthetic ImageFolder."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

from facestream.pipeline.cli import main  # noqa: E402


def test_train_export_eval(image_folder, tmp_path, capsys):
    run, store = tmp_path / "run", tmp_path / "store"
    args = ["train", "--arch", "cosface", "--data", str(image_folder), "--split", "orl", "--epochs", "2"]
    assert (
        main([*args, "--batch-size", "8", "--val-split", "0.2", "--augment", "mild", "--out", str(run)]) == 0
    )
    out, err = capsys.readouterr()
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["epochs_run"] == 2 and 0.0 <= summary["test_accuracy"] <= 1.0
    assert "epoch 2/2" in err
    assert (run / "best.pt").is_file() and (run / "last.pt").is_file()

    assert main(["export", "--model", str(run), "--name", "tiny", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "fp32: model.onnx  max abs diff vs PyTorch" in out and "fp16: model.fp16.onnx" in out

    report_dir = tmp_path / "report"
    cmd = [
        "eval",
        "--model",
        str(run),
        "--data",
        str(image_folder),
        "--split",
        "orl",
        "--out",
        str(report_dir),
    ]
    assert main(cmd) == 0
    rep = json.loads((report_dir / "report.json").read_text())
    assert rep["samples"] == 15 and "tar_at_far_0.01" in rep["verification"]
    assert (report_dir / "confusion.png").is_file()

    onnx_dir = tmp_path / "onnx-report"
    cmd = ["eval", "--model", "tiny", "--store", str(store), "--data", str(image_folder), "--split", "orl"]
    assert main([*cmd, "--out", str(onnx_dir), "--backend", "onnxruntime"]) == 0
    onnx_rep = json.loads((onnx_dir / "report.json").read_text())
    assert abs(onnx_rep["accuracy"] - rep["accuracy"]) <= 1 / 15  # ONNX Runtime agrees with PyTorch


def test_train_refuses_a_folder_that_is_not_a_dataset(tmp_path, capsys):
    (tmp_path / "only").mkdir()
    (tmp_path / "only" / "a.png").write_bytes(b"")
    assert main(["train", "--arch", "seed-cnn", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("facestream: error: dataset folder") and "only one class" in err
