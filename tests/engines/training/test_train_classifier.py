"""FaceClassifier (inference side, no torch): labels, the calibrated "unknown" threshold, the CLI eval path.

The model here is a hand-built ONNX graph (Flatten -> MatMul -> Softmax) so these tests run without torch.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from facestream.engines.classifier import UNKNOWN, FaceClassifier
from facestream.engines.manifest import Manifest, TensorSpec
from facestream.engines.training.data import load_image_folder
from facestream.errors import FacestreamError

REPO = Path(__file__).resolve().parents[3]
LABELS = ["alice", "bob", "carol"]


def block_weights() -> np.ndarray:
    """Class c scores the mean brightness of the block where the synthetic class c is drawn."""
    w = np.zeros((128 * 128, 3), np.float32)
    for c in range(3):
        mask = np.zeros((128, 128), np.float32)
        y, x = 16 + 28 * (c % 3), 16 + 28 * (c // 3)
        mask[y + 8 : y + 28, x + 8 : x + 28] = 1.0
        w[:, c] = 6.0 * mask.ravel() / mask.sum()
    return w


def put_block_model(store, name="blocks", threshold=0.6) -> None:
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["input"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "w"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
        ],
        "blocks",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 128, 128])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 3])],
        [numpy_helper.from_array(block_weights(), "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    manifest = Manifest(
        name=name,
        task="classifier",
        inputs=[TensorSpec(name="input", shape=["batch", 1, 128, 128], value_range=(0.0, 1.0))],
        outputs=[TensorSpec(name="probs", shape=["batch", 3])],
        labels=LABELS,
        extra={"unknown_threshold": threshold},
    )
    store.put(manifest, {"fp32": model.SerializeToString()})


def face(c: int | None) -> np.ndarray:
    img = np.full((128, 128), 0.2, np.float32)
    if c is not None:
        y, x = 16 + 28 * (c % 3), 16 + 28 * (c // 3)
        img[y : y + 36, x : x + 36] = 0.8
    return img


def test_predicts_labels_and_unknown(store):
    put_block_model(store)
    clf = FaceClassifier("blocks", store=store, backend="onnxruntime")
    out = clf.predict(np.stack([face(0), face(2), face(None)]))
    assert [label for label, _ in out] == ["alice", "carol", UNKNOWN]
    assert out[0][1] > 0.94 and abs(out[2][1] - 1 / 3) < 1e-3  # a blank crop is equally all three


def test_threshold_comes_from_manifest_and_can_be_overridden(store):
    put_block_model(store, threshold=0.99)
    strict = FaceClassifier("blocks", store=store, backend="onnxruntime")
    assert strict.threshold == 0.99  # a 0.948-confident face falls below
    assert strict.predict(face(1)[None])[0][0] == UNKNOWN
    lenient = FaceClassifier("blocks", store=store, backend="onnxruntime", threshold=0.5)
    assert lenient.predict(face(1)[None])[0][0] == "bob"


def test_rejects_non_classifier_and_bad_shapes(store):
    put_block_model(store)
    clf = FaceClassifier("blocks", store=store, backend="onnxruntime")
    with pytest.raises(FacestreamError, match=r"shape \(N, 128, 128\)"):
        clf.predict(np.zeros((2, 1, 128, 128, 1), np.float32))
    assert clf.predict(np.zeros((0, 128, 128), np.float32)) == []
    with pytest.raises(FacestreamError, match="no embedding output"):
        clf.embed(face(0)[None])


def test_cli_eval_on_store_model(store, make_image_folder, tmp_path):
    """facestream eval on an ONNX store model: JSON report and confusion PNG, no torch needed."""
    put_block_model(store)
    data = make_image_folder(tmp_path / "faces", classes=3, per_class=4)
    for c, name in enumerate(LABELS):  # folder names = the model's labels
        (data / f"person{c}").rename(data / name)
    out = tmp_path / "report"
    cmd = [sys.executable, "-m", "facestream.pipeline.cli", "eval", "--model", "blocks", "--data", str(data)]
    cmd += ["--store", str(store.root), "--out", str(out), "--backend", "onnxruntime"]
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    rep = json.loads((out / "report.json").read_text())
    assert rep["samples"] == 12 and rep["accuracy"] == 1.0 and rep["top5_accuracy"] == 1.0
    assert set(rep["per_class"]) == set(LABELS)
    assert cv2.imread(str(out / "confusion.png")) is not None
    assert len(load_image_folder(data)) == 12


def test_cli_user_errors_are_one_line(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "facestream.pipeline.cli",
        "eval",
        "--model",
        "nope",
        "--data",
        str(tmp_path / "missing"),
    ]
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1].startswith("facestream: error: dataset folder")
    assert "Traceback" not in res.stderr


def test_importing_inference_side_does_not_import_torch():
    code = (
        "import sys, facestream.engines.classifier, facestream.engines.runtime, facestream.engines.training.commands;"
        "import facestream.engines.training.evaluate, facestream.engines.training.data;"
        "import facestream.engines.training.baselines;"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_onnx_model_is_valid(store):
    put_block_model(store)
    onnx.checker.check_model(onnx.load(str(store.get("blocks").onnx_path())))
