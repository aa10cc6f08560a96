"""``facestream models import-dlib`` and ``models list`` through the real CLI entry point."""

from __future__ import annotations

from facestream.pipeline.cli import main


def test_import_then_list(tmp_path, capsys):
    store = tmp_path / "models"
    assert main(["models", "import-dlib", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "dlib-resnet-embedder" in out and "dlib-mmod-detector" in out and "CC0 1.0" in out
    assert (store / "dlib-resnet-embedder" / "model.fp16.onnx").is_file()
    assert main(["models", "list", "--store", str(store)]) == 0
    listed = capsys.readouterr().out
    assert "embedder" in listed and "detector" in listed and "fp32,fp16" in listed


def test_list_empty_store(tmp_path, capsys):
    assert main(["models", "list", "--store", str(tmp_path / "none")]) == 0
    assert "no models" in capsys.readouterr().out
