"""Classical baselines the recipe cites, in numpy: Eigenfaces (PCA), Fisherfaces (PCA + LDA) and LBPH.

Each takes training images (N, H, W) in [0, 1] with labels and returns predicted labels for test images,
by nearest neighbour in its feature space. No torch; used by the benchmark for side-by-side numbers.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from skimage.feature import local_binary_pattern


def _flat(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1).astype(np.float64)


def _nearest(train_feats: np.ndarray, train_labels: np.ndarray, test_feats: np.ndarray) -> np.ndarray:
    d = (test_feats**2).sum(1)[:, None] - 2 * test_feats @ train_feats.T + (train_feats**2).sum(1)[None]
    return train_labels[d.argmin(axis=1)]


def _pca(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    return mean, vt[:k].T


def eigenfaces(train: np.ndarray, labels: np.ndarray, test: np.ndarray, components: int = 80) -> np.ndarray:
    """Turk & Pentland: project on the top principal components, 1-NN (Euclidean)."""
    x = _flat(train)
    mean, w = _pca(x, min(components, len(x) - 1))
    return _nearest((x - mean) @ w, labels, (_flat(test) - mean) @ w)


def fisherfaces(train: np.ndarray, labels: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Belhumeur et al.: PCA to N - c dims (so the within-class scatter is invertible), LDA to c - 1, 1-NN."""
    x = _flat(train)
    classes = np.unique(labels)
    mean, w_pca = _pca(x, len(x) - len(classes))
    z = (x - mean) @ w_pca
    mu = z.mean(axis=0)
    sw = np.zeros((z.shape[1], z.shape[1]))
    sb = np.zeros_like(sw)
    for c in classes:
        zc = z[labels == c]
        mc = zc.mean(axis=0)
        sw += (zc - mc).T @ (zc - mc)
        sb += len(zc) * np.outer(mc - mu, mc - mu)
    vals, vecs = np.linalg.eig(np.linalg.solve(sw, sb))  # Sw^-1 Sb, as in the paper
    w_lda = vecs[:, np.argsort(-vals.real)[: len(classes) - 1]].real
    w = w_pca @ w_lda
    return _nearest((x - mean) @ w, labels, (_flat(test) - mean) @ w)


def lbp_histograms(images: np.ndarray, grid: int = 8, points: int = 8, radius: int = 1) -> np.ndarray:
    """Ahonen et al. / OpenCV LBPH features: LBP codes, a 256-bin histogram per cell of a grid x grid
    layout, concatenated and normalised per cell."""
    feats = []
    bins = 2**points
    for img in images:
        codes = local_binary_pattern((img * 255).astype(np.uint8), points, radius, method="default").astype(
            np.int64
        )
        h, w = codes.shape
        cells = []
        for i in range(grid):
            for j in range(grid):
                cell = codes[i * h // grid : (i + 1) * h // grid, j * w // grid : (j + 1) * w // grid]
                hist = np.bincount(cell.ravel(), minlength=bins).astype(np.float64)
                cells.append(hist / max(1.0, hist.sum()))
        feats.append(np.concatenate(cells))
    return np.stack(feats)


def lbph(train: np.ndarray, labels: np.ndarray, test: np.ndarray, chunk: int = 4) -> np.ndarray:
    """LBPH: 1-NN by chi-square distance between LBP histograms (as cv2.face.LBPHFaceRecognizer)."""
    a, b = lbp_histograms(train).astype(np.float32), lbp_histograms(test).astype(np.float32)
    preds = []
    for i in range(0, len(b), chunk):
        q = b[i : i + chunk, None, :]
        chi2 = ((q - a[None]) ** 2 / (q + a[None] + 1e-12)).sum(axis=2)  # empty bins in both add 0
        preds.append(labels[chi2.argmin(axis=1)])
    return np.concatenate(preds)


BASELINES: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "eigenfaces (PCA)": eigenfaces,
    "fisherfaces (LDA)": fisherfaces,
    "LBPH": lbph,
}
