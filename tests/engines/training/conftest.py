"""Synthetic faces for fast training tests: each class is a bright block at its own place, plus noise."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from facestream.engines.training.data import FaceDataset

SIZE = 128


def synthetic_images(classes: int, per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for c in range(classes):
        for _ in range(per_class):
            img = rng.normal(0.2, 0.05, (SIZE, SIZE))
            y, x = 16 + 28 * (c % 3), 16 + 28 * (c // 3)
            dy, dx = rng.integers(-4, 5, size=2)
            img[y + dy : y + dy + 36, x + dx : x + dx + 36] += 0.6
            images.append(np.clip(img, 0, 1).astype(np.float32))
            labels.append(c)
    return np.stack(images), np.asarray(labels, dtype=np.int64)


@pytest.fixture
def tiny_dataset() -> FaceDataset:
    images, labels = synthetic_images(3, 8)
    names = ["alice", "bob", "carol"]
    return FaceDataset(images, labels, names, [Path(f"{names[c]}/{i}.png") for i, c in enumerate(labels)])


PILLOW_WRITES = (".gif", ".tif", ".tiff", ".webp")  # written with Pillow: OpenCV cannot write them all


def write_image_folder(
    root: Path, classes: int = 3, per_class: int = 10, ext: str = ".png", colour: bool = False
) -> Path:
    """``root/person<c>/<i><ext>``; ``colour`` writes RGB images (the face block tinted) instead of grey."""
    images, labels = synthetic_images(classes, per_class)
    counters = [0] * classes
    for img, c in zip(images, labels, strict=True):
        counters[c] += 1
        folder = root / f"person{c}"
        folder.mkdir(parents=True, exist_ok=True)
        grey = (img * 255).astype(np.uint8)
        pixels = np.stack([grey, grey // 2 + 60, grey], axis=2) if colour else grey
        path = folder / f"{counters[c]}{ext}"
        if ext in PILLOW_WRITES:
            from PIL import Image

            Image.fromarray(pixels).save(path)
        else:
            assert cv2.imwrite(str(path), pixels[:, :, ::-1] if colour else pixels), path
    return root


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    return write_image_folder(tmp_path / "faces")


@pytest.fixture
def make_image_folder():
    return write_image_folder
