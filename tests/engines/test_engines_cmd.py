"""``facestream engines ...`` handlers and the self-test, run in-process on a tmp store and engine dir."""

from __future__ import annotations

import argparse
import sys

import fake_tensorrt
import pytest
import tiny_models

from facestream.engines import gpu_check
from facestream.engines.commands import engines_cmd
from facestream.engines.trt.cache import EngineCache, EngineKey
from facestream.errors import FacestreamError


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="facestream")
    engines_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture
def tiny_store(store):
    for family in tiny_models.FAMILIES:
        tiny_models.put_tiny_model(store, family)
    return store


def test_list_shows_key_and_size_and_clean_removes(tmp_path, capsys):
    cache = EngineCache(tmp_path / "engines")
    key = EngineKey("tiny-cnn", "a" * 64, "10.3.0", "Orin", "8.7", "fp16")
    cache.write(key, b"x" * (3 << 20), build_seconds=1.0)
    assert _run(["engines", "list", "--engine-dir", str(cache.root), "--keys"]) == 0
    out = capsys.readouterr().out
    assert "tiny-cnn" in out and "fp16" in out and "10.3.0" in out and "3.0" in out
    assert key.digest()[:16] in out and "'onnx_sha256': 'aaaa" in out
    with pytest.raises(FacestreamError, match="add --yes"):
        _run(["engines", "clean", "--engine-dir", str(cache.root)])
    assert _run(["engines", "clean", "tiny-cnn", "--engine-dir", str(cache.root)]) == 0
    assert "removed 1 engine(s)" in capsys.readouterr().out
    assert cache.entries() == []


@pytest.mark.skipif(gpu_check.tensorrt_status()[0], reason="this host has TensorRT")
def test_verify_without_tensorrt_compares_fp16_with_fp32(tiny_store, capsys):
    assert (
        _run(["engines", "verify", "tiny-attention", "--store", str(tiny_store.root), "--random", "1"]) == 0
    )
    out = capsys.readouterr().out
    assert "comparing FP16 with FP32 on ONNX Runtime instead" in out
    line = next(x for x in out.splitlines() if "attended" in x)
    cos = float(line.split("cosine")[1].split()[0])
    err = float(line.split("max|err|")[1].split()[0])
    assert 0.999 < cos <= 1.0 and 0 < err < 5e-3  # FP16 differs, but only a little


def test_verify_with_real_images(tiny_store, tmp_path, capsys):
    import cv2
    import numpy as np

    faces = tmp_path / "faces"
    faces.mkdir()
    for i in range(3):
        cv2.imwrite(
            str(faces / f"{i}.png"), np.random.default_rng(i).integers(0, 255, (40, 30), dtype=np.uint8)
        )
    args = [
        "engines",
        "verify",
        "tiny-cnn",
        "--store",
        str(tiny_store.root),
        "--random",
        "0",
        "--real",
        str(faces),
    ]
    assert _run(args) == 0
    assert "  real     logits" in capsys.readouterr().out


@pytest.mark.skipif(gpu_check.tensorrt_status()[0], reason="this host has TensorRT")
def test_build_without_tensorrt_is_a_clear_error(tiny_store):
    with pytest.raises(FacestreamError, match="'tensorrt' was requested but is not available"):
        _run(["engines", "build", "--all", "--store", str(tiny_store.root)])
    with pytest.raises(FacestreamError, match="pass --all"):
        _run(["engines", "build", "--store", str(tiny_store.root)])


def test_fake_tensorrt_build_all_then_nothing_to_do(tiny_store, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt.module())
    monkeypatch.setattr("facestream.engines.backends.select.import_cudart", lambda: fake_tensorrt.FakeCudart())
    argv = ["engines", "build", "--all", "--store", str(tiny_store.root), "--engine-dir", str(tmp_path / "e")]
    argv += ["--dim", "batch=1:4:16", "--dim", "seq=1:8:32"]
    assert _run(argv) == 0
    out = capsys.readouterr().out
    assert out.count("built (no engine for this key)") == 8  # 4 models x fp32/fp16
    assert "parsing ONNX" in out and "building (TensorRT tunes kernels" in out
    assert _run(argv) == 0
    assert capsys.readouterr().out.count("already cached") == 8
    assert len(EngineCache(tmp_path / "e").entries()) == 8


def test_selftest_without_gpu_runs_onnxruntime_part(tiny_store, capsys):
    if gpu_check.gpu_status()[0]:
        pytest.skip("this host has a GPU; the no-GPU path is what this test checks")
    assert (
        _run(["engines", "selftest", "--store", str(tiny_store.root), "--repeats", "2", "--batches", "1,8"])
        == 0
    )
    out = capsys.readouterr().out
    assert out.count("onnxruntime time") == 4 * 2 * 2  # 4 models x 2 precisions x 2 batch sizes
    assert "ort vs ort-fp32" in out
    assert "skipped: all GPU checks" in out and "0 failed" in out


def test_selftest_report_counts_failures():
    report = gpu_check.Report()
    report.add("x", "m", "fp32", "1", "ok")
    report.add("y", "m", "fp16", "1", "FAIL", "cos 0.2")
    text = report.render()
    assert report.failures == 1 and "2 checks, 1 failed" in text and "cos 0.2" in text


def test_fake_tensorrt_selftest_exercises_cache_and_compares(tiny_store, monkeypatch):
    """The whole self-test on the fakes: every row ok, including hit / changed key / corrupt plan."""
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt.module())
    monkeypatch.setattr("facestream.engines.backends.select.import_cudart", lambda: fake_tensorrt.FakeCudart())
    lines: list[str] = []
    report = gpu_check.run_selftest(tiny_store, None, batches=(1, 8), repeats=1, emit=lines.append)
    checks = {}
    for check, model, precision, _batch, result, detail in report.rows:
        checks.setdefault(check, []).append((model, precision, result, detail))
    assert report.failures == 0, report.render()
    assert len(checks["trt cache hit"]) == 8 and all(
        r[3] == "exact key match" for r in checks["trt cache hit"]
    )
    assert all(r[3] == "no engine for this key" for r in checks["trt changed key"])
    assert all("does not match its sidecar" in r[3] for r in checks["trt corrupt plan"])
    assert len(checks["trt vs ort"]) == 10  # 8 engines, the LSTM has two outputs
    assert len(checks["tensorrt time"]) == 16
    assert [r[2] for r in checks["cuda copies"] + checks["cuda graph"]] == ["ok", "ok"]
    assert report.skipped == []


def test_gpu_check_runs_as_a_module(tiny_store):
    """``python -m facestream.engines.gpu_check`` is the entry point a GPU box's operator runs first."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-m", "facestream.engines.gpu_check", "--store", str(tiny_store.root), "--repeats", "1"]
    done = subprocess.run(cmd + ["--batches", "1"], cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "tiny-cnn" in done.stdout and "0 failed" in done.stdout
    bad = subprocess.run(cmd + ["--batches", "x"], cwd=root, capture_output=True, text=True, timeout=120)
    assert (
        bad.returncode == 2
        and bad.stderr.strip() == "gpu_check: error: --batches must be comma-separated integers, got 'x'"
    )
