"""Export a trained checkpoint into the model store: FP32 + FP16 ONNX with a manifest (labels,
preprocessing contract, TensorRT profiles, calibrated "unknown" threshold), verified against PyTorch."""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
from torch import nn

from facestream.engines.fp16 import convert_to_fp16
from facestream.engines.manifest import Manifest, ProfileSpec, TensorSpec
from facestream.engines.store import ModelEntry, ModelStore
from facestream.errors import FacestreamError

from .architectures import ARCHITECTURES, IMAGE_SIZE, is_embedding_model
from .onnx_export import OPSET, to_onnx, verification_samples, verify_against_torch
from .train import load_checkpoint, model_from_checkpoint

# ONNX Runtime's CPU LSTM/GRU kernels are float32-only: recurrent ops stay FP32 inside the FP16 variant.
FP16_KEEP_FP32 = ["LSTM", "GRU", "RNN"]
MAX_DIFF_FP32 = 1e-4
MAX_DIFF_FP16 = 2e-2
PROFILE = {"min": 1, "opt": 8, "max": 64}


@dataclass
class ExportReport:
    entry: ModelEntry
    max_abs_diff: dict[str, float]
    opset: int


def build_manifest(name: str, ckpt: dict[str, Any], model: nn.Module, threshold: float) -> Manifest:
    classes = list(ckpt["classes"])
    outputs = [TensorSpec(name="probs", shape=["batch", len(classes)])]
    if is_embedding_model(model):
        outputs.append(TensorSpec(name="embedding", shape=["batch", int(model.weight.shape[1])]))
    shape = [1, IMAGE_SIZE, IMAGE_SIZE]
    info = ARCHITECTURES[ckpt["arch"]]
    return Manifest(
        name=name,
        task="classifier",
        precision="fp32",
        inputs=[TensorSpec(name="input", shape=["batch", *shape], value_range=(0.0, 1.0))],
        outputs=outputs,
        profiles={
            "input": ProfileSpec(
                min=[PROFILE["min"], *shape], opt=[PROFILE["opt"], *shape], max=[PROFILE["max"], *shape]
            )
        },
        preprocessing={
            "function": "facestream.engines.preprocess.face_crop_128",
            "steps": ["crop face box", "resize 128x128", "grey", "divide by 255"],
            "layout": "NCHW",
            "size": IMAGE_SIZE,
            "colour": "grey",
            "range": [0.0, 1.0],
        },
        labels=classes,
        licence="weights trained by facestream on " + (ckpt.get("data_source") or "user data"),
        source=f"facestream train --arch {ckpt['arch']} (checkpoint epoch {ckpt['epoch']})",
        extra={
            "arch": ckpt["arch"],
            "family": info.family,
            "seed_architecture": info.seed,
            "unknown_threshold": threshold,
            "threshold_source": ckpt.get("threshold_source", "given at export"),
            "embedding_output": "embedding" if is_embedding_model(model) else None,
            "best_val_accuracy": ckpt.get("best_val_accuracy"),
            "train_config": ckpt.get("config"),
        },
    )


def export_checkpoint(
    checkpoint: str | Path,
    name: str | None = None,
    store: ModelStore | None = None,
    unknown_threshold: float | None = None,
    opset: int = OPSET,
) -> ExportReport:
    """Export ``checkpoint`` into ``store`` as ``name`` (FP32 default + FP16 variant), verified on ORT."""
    ckpt = load_checkpoint(checkpoint)
    model = model_from_checkpoint(ckpt)
    name = name or Path(ckpt["path"]).parent.name
    threshold = unknown_threshold if unknown_threshold is not None else ckpt.get("unknown_threshold")
    if threshold is None:
        raise FacestreamError(
            f"checkpoint {ckpt['path']} has no calibrated threshold; pass --unknown-threshold"
        )
    if not 0.0 <= threshold <= 1.0:
        raise FacestreamError(f"--unknown-threshold must be in [0, 1], got {threshold}")
    fp32 = to_onnx(model, opset)
    with warnings.catch_warnings():  # tiny weights truncated to FP16's range: the diff check below bounds it
        warnings.simplefilter("ignore")
        fp16 = convert_to_fp16(fp32, op_block_list=[*_default_block_list(), *FP16_KEEP_FP32])
    samples = verification_samples()
    diffs = {
        "fp32": verify_against_torch(model, fp32, samples),
        "fp16": verify_against_torch(model, fp16, samples),
    }
    if diffs["fp32"] > MAX_DIFF_FP32:
        raise FacestreamError(
            f"ONNX export of {name} differs from PyTorch by {diffs['fp32']:.2e} (> {MAX_DIFF_FP32})"
        )
    manifest = build_manifest(name, ckpt, model, float(threshold))
    manifest.extra["export_max_abs_diff"] = diffs
    store = store or ModelStore()
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for precision, proto in (("fp32", fp32), ("fp16", fp16)):
            paths[precision] = Path(tmp) / f"{precision}.onnx"
            onnx.save(proto, paths[precision])
        entry = store.put(manifest, paths)
    return ExportReport(entry=entry, max_abs_diff=diffs, opset=opset)


def _default_block_list() -> list[str]:
    from onnxconverter_common import float16

    return list(float16.DEFAULT_OP_BLOCK_LIST)
