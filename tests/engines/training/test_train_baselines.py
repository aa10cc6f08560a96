"""Classical baselines (numpy): Eigenfaces, Fisherfaces, LBPH."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from facestream.engines.training.baselines import BASELINES, eigenfaces, lbp_histograms
from facestream.engines.training.data import apply_split, load_image_folder

ORL = Path(__file__).resolve().parents[4] / "shared" / "data" / "orl_att_faces"


@pytest.mark.parametrize("name", list(BASELINES))
def test_baseline_separates_synthetic_classes(name, tiny_dataset):
    ds = tiny_dataset
    train = np.flatnonzero(np.arange(len(ds)) % 8 < 5)
    test = np.setdiff1d(np.arange(len(ds)), train)
    # Smooth the pixel noise so LBP sees the block edges (texture), not random codes.
    images = np.stack([cv2.GaussianBlur(img, (0, 0), 3) for img in ds.images])
    pred = BASELINES[name](images[train], ds.labels[train], images[test])
    assert pred.shape == (len(test),)
    assert (pred == ds.labels[test]).mean() == 1.0


def test_baseline_is_not_constant(tiny_dataset):
    """Shuffled training labels must break it: the predictions follow the data, not a fixed answer."""
    ds = tiny_dataset
    shuffled = np.random.default_rng(0).permutation(ds.labels)
    assert (eigenfaces(ds.images, shuffled, ds.images) == shuffled).all()
    assert (eigenfaces(ds.images, shuffled, ds.images) != ds.labels).any()


def test_lbp_histograms_are_normalised_per_cell(tiny_dataset):
    h = lbp_histograms(tiny_dataset.images[:2], grid=4)
    assert h.shape == (2, 16 * 256)
    np.testing.assert_allclose(h.reshape(2, 16, 256).sum(axis=2), 1.0)


@pytest.mark.needs_data
def test_eigenfaces_and_fisherfaces_on_orl():
    if not ORL.is_dir():
        pytest.skip(f"ORL faces not present at {ORL} (shared data is not in this checkout)")
    train, test = apply_split(load_image_folder(ORL), "orl")
    for name, floor in (("eigenfaces (PCA)", 0.85), ("fisherfaces (LDA)", 0.8)):
        pred = BASELINES[name](train.images, train.labels, test.images)
        assert (pred == test.labels).mean() >= floor, name
