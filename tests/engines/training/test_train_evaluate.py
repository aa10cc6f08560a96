"""Evaluation metrics (numpy): accuracy, top-5, per-class precision/recall, confusion PNG, verification ROC."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facestream.engines.training.evaluate import (
    Predictions,
    confusion_matrix,
    per_class_precision_recall,
    report,
    topk_accuracy,
    verification_roc,
)
from facestream.errors import FacestreamError


def test_topk_and_confusion():
    probs = np.array([[0.7, 0.2, 0.1], [0.5, 0.3, 0.2], [0.1, 0.1, 0.8], [0.3, 0.6, 0.1]])
    labels = np.array([0, 1, 2, 0])
    assert topk_accuracy(probs, labels, 1) == 0.5
    assert topk_accuracy(probs, labels, 2) == 1.0
    cm = confusion_matrix(probs.argmax(1), labels, 3)
    assert cm.tolist() == [[1, 1, 0], [1, 0, 0], [0, 0, 1]]
    precision, recall = per_class_precision_recall(cm)
    np.testing.assert_allclose(precision, [0.5, 0.0, 1.0])
    np.testing.assert_allclose(recall, [0.5, 0.0, 1.0])


def clustered_embeddings(people: int, per: int, spread: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(people, 32))
    emb = np.repeat(centres, per, axis=0) + spread * rng.normal(size=(people * per, 32))
    return emb / np.linalg.norm(emb, axis=1, keepdims=True), np.repeat(np.arange(people), per)


def test_verification_separable_vs_random():
    emb, labels = clustered_embeddings(20, 5, 0.05)
    good = verification_roc(emb, labels)
    assert good["tar_at_far_0.01"] == 1.0 and good["auc"] > 0.99
    assert good["genuine_pairs"] == 20 * 10 and good["impostor_pairs"] == 100 * 99 // 2 - 200
    rng = np.random.default_rng(1)
    noise = rng.normal(size=emb.shape)
    bad = verification_roc(noise / np.linalg.norm(noise, axis=1, keepdims=True), labels)
    assert bad["tar_at_far_0.01"] < 0.2 and 0.35 < bad["auc"] < 0.65


def test_verification_needs_pairs():
    with pytest.raises(FacestreamError, match="at least two images"):
        verification_roc(np.eye(3), np.array([0, 1, 2]))


def test_report_writes_png_and_threshold_stats(tmp_path):
    emb, labels = clustered_embeddings(4, 3, 0.1)
    probs = np.full((12, 4), 0.1)
    probs[np.arange(12), labels] = 0.7
    probs[0] = [0.25, 0.25, 0.25, 0.25]  # low confidence: rejected as unknown at 0.5
    rep = report(
        Predictions(probs, emb), labels, ["a", "b", "c", "d"], threshold=0.5, png=tmp_path / "cm.png"
    )
    assert rep["accuracy"] == 1.0 and rep["known_accepted_rate"] == pytest.approx(11 / 12)
    assert rep["per_class"]["a"]["support"] == 3 and "verification" in rep
    img = cv2.imread(str(tmp_path / "cm.png"))
    assert img is not None and img.shape[0] > 4 * 12
