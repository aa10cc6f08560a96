"""Honest evaluation: accuracy, top-5, per-class precision/recall, a confusion-matrix PNG, and for
embedding models a verification ROC with TAR at FAR 1e-2 / 1e-3. Metrics are numpy only, so a store
model (ONNX Runtime) is evaluated the same way as a checkpoint (PyTorch)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facestream.errors import FacestreamError

from .data import FaceDataset

FARS = (1e-2, 1e-3)
_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 has only trapz


@dataclass
class Predictions:
    probs: np.ndarray  # (N, classes) in the model's label order
    embeddings: np.ndarray | None  # (N, D) L2-normalised, embedding models only


def topk_accuracy(probs: np.ndarray, labels: np.ndarray, k: int) -> float:
    k = min(k, probs.shape[1])
    top = np.argsort(-probs, axis=1)[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())


def confusion_matrix(pred: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (labels, pred), 1)
    return cm  # rows: true class, columns: predicted


def per_class_precision_recall(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    tp = np.diag(cm).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(cm.sum(0) > 0, tp / cm.sum(0), 0.0)
        recall = np.where(cm.sum(1) > 0, tp / cm.sum(1), 0.0)
    return precision, recall


def verification_roc(embeddings: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """All pairs: cosine similarity; genuine = same person. TAR at each FAR in FARS (threshold = the
    impostor score quantile), plus the ROC curve sampled at 50 FARs and its AUC."""
    sims = embeddings @ embeddings.T
    iu = np.triu_indices(len(labels), k=1)
    scores = sims[iu]
    genuine = labels[iu[0]] == labels[iu[1]]
    gen, imp = scores[genuine], scores[~genuine]
    if gen.size == 0 or imp.size == 0:
        raise FacestreamError("verification needs at least two images of one person and two people")
    out: dict[str, Any] = {"genuine_pairs": int(gen.size), "impostor_pairs": int(imp.size)}
    for far in FARS:
        thr = float(np.quantile(imp, 1.0 - far))
        out[f"tar_at_far_{far:g}"] = float((gen > thr).mean())
        out[f"threshold_at_far_{far:g}"] = thr
        out[f"far_{far:g}_resolvable"] = bool(imp.size * far >= 1)
    thresholds = np.sort(np.concatenate([gen, imp]))[::-1]
    tar = np.searchsorted(np.sort(gen), thresholds, side="left")
    tar = 1.0 - tar / gen.size
    far_curve = 1.0 - np.searchsorted(np.sort(imp), thresholds, side="left") / imp.size
    out["auc"] = float(_trapezoid(np.r_[0.0, tar, 1.0], np.r_[0.0, far_curve, 1.0]))
    pick = np.unique(np.clip(np.searchsorted(far_curve, np.logspace(-4, 0, 50)), 0, len(far_curve) - 1))
    out["roc"] = {"far": far_curve[pick].round(6).tolist(), "tar": tar[pick].round(6).tolist()}
    return out


def confusion_png(cm: np.ndarray, path: Path, cell: int = 12) -> Path:
    """Row-normalised confusion matrix as a heat map (rows true, columns predicted), written with cv2."""
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, np.maximum(rows, 1)).astype(np.float32)
    img = cv2.applyColorMap((norm * 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS)
    img = cv2.resize(img, (cm.shape[1] * cell, cm.shape[0] * cell), interpolation=cv2.INTER_NEAREST)
    pad = 24
    canvas = np.full((img.shape[0] + pad, img.shape[1] + pad, 3), 255, np.uint8)
    canvas[pad:, pad:] = img
    cv2.putText(canvas, "pred ->", (pad, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    cv2.putText(canvas, "true", (2, pad + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (0, 0, 0), 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), canvas):
        raise FacestreamError(f"cannot write confusion matrix to {path}")
    return path


def align_labels(data: FaceDataset, model_labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the samples whose person the model knows, and their labels in the model's order."""
    index = {name: i for i, name in enumerate(model_labels)}
    mapped = np.array([index.get(data.classes[c], -1) for c in data.labels], dtype=np.int64)
    keep = np.flatnonzero(mapped >= 0)
    if keep.size == 0:
        raise FacestreamError("none of the people in the evaluation data are classes of this model")
    return keep, mapped[keep]


def report(
    pred: Predictions,
    labels: np.ndarray,
    classes: list[str],
    threshold: float | None = None,
    png: Path | None = None,
) -> dict[str, Any]:
    """The JSON-able evaluation report for predictions on samples with ``labels`` (model label order)."""
    top1 = pred.probs.argmax(axis=1)
    cm = confusion_matrix(top1, labels, len(classes))
    precision, recall = per_class_precision_recall(cm)
    present = np.unique(labels)
    out: dict[str, Any] = {
        "samples": int(len(labels)),
        "accuracy": float((top1 == labels).mean()),
        "top5_accuracy": topk_accuracy(pred.probs, labels, 5),
        "macro_precision": float(precision[present].mean()),
        "macro_recall": float(recall[present].mean()),
        "per_class": {
            classes[c]: {
                "precision": float(precision[c]),
                "recall": float(recall[c]),
                "support": int(cm[c].sum()),
            }
            for c in present
        },
        "confusion_matrix": cm.tolist(),
    }
    if threshold is not None:
        conf = pred.probs.max(axis=1)
        accepted = conf >= threshold
        out["unknown_threshold"] = threshold
        out["known_accepted_rate"] = float(accepted.mean())
        out["accuracy_with_unknown"] = float(((top1 == labels) & accepted).mean())
    if pred.embeddings is not None:
        out["verification"] = verification_roc(pred.embeddings, labels)
    if png is not None:
        out["confusion_png"] = str(confusion_png(cm, png))
    return out
