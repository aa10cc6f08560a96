"""Face datasets in ImageFolder layout (one folder per person), split policies and augmentation.

No torch here: images become ``(N, 128, 128)`` float32 arrays through ``face_crop_128``, so eval on an
exported model and the benchmark baselines read data the same way as training.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facestream.engines.preprocess import face_crop_128
from facestream.errors import FacestreamError
from facestream.fsutil import IMAGE_SUFFIXES, is_image_file
from facestream.image_files import read_image

SPLIT_POLICIES = ("none", "orl", "random")


@dataclass
class FaceDataset:
    """Images (N, 128, 128) float32 in [0, 1], integer labels, class names and the source files."""

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    files: list[Path]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> FaceDataset:
        index = np.asarray(index, dtype=np.int64)
        return FaceDataset(
            self.images[index], self.labels[index], self.classes, [self.files[i] for i in index]
        )


def _natural_key(path: Path) -> list[int | str]:
    """'10.pgm' after '9.pgm': numbers compare as numbers."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.stem)]


def center_box(width: int, height: int, fraction: float) -> tuple[float, float, float, float]:
    """A centred square box covering ``fraction`` of the shorter side (LFW faces sit in the centre)."""
    side = fraction * min(width, height)
    cx, cy = width / 2, height / 2
    return cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2


def load_image_folder(root: str | Path, center_crop: float | None = None) -> FaceDataset:
    """Read ``root/<person>/<image>`` (PGM, PNG, JPEG, BMP, GIF, TIFF, WEBP, ...; grey or colour); each image goes through ``face_crop_128`` (whole image, or a centred
    square of ``center_crop`` of the shorter side). A folder that is not a dataset raises FacestreamError."""
    root = Path(root)
    if not root.exists():
        raise FacestreamError(f"dataset folder {root} does not exist")
    if not root.is_dir():
        raise FacestreamError(f"dataset path {root} is a file, not a folder of one folder per person")
    people = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    per_person = {
        p.name: sorted((f for f in p.iterdir() if is_image_file(f)), key=_natural_key)
        for p in people
    }
    per_person = {name: files for name, files in per_person.items() if files}
    if not per_person:
        others = sorted(f.name for p in people for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
        seen = f"; the person folders hold other files, e.g. {others[0]!r}" if others else ""
        raise FacestreamError(
            f"dataset folder {root} has no person folders with images ({', '.join(IMAGE_SUFFIXES)}){seen}"
        )
    if len(per_person) < 2:
        only = next(iter(per_person))
        raise FacestreamError(
            f"dataset folder {root} has only one class ({only!r}); a classifier needs two or more"
        )
    images, labels, files = [], [], []
    classes = sorted(per_person)
    for label, name in enumerate(classes):
        for f in per_person[name]:
            img = read_image(f)  # any format OpenCV or Pillow reads; grey or BGR uint8
            box = center_box(img.shape[1], img.shape[0], center_crop) if center_crop else None
            images.append(face_crop_128(img, box))
            labels.append(label)
            files.append(f)
    return FaceDataset(np.stack(images), np.asarray(labels, dtype=np.int64), classes, files)


def split_by_file_index(ds: FaceDataset, train_per_class: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """The ORL classic split: each person's first ``train_per_class`` files (natural order: 1..5) train, the
    rest test."""
    train, test = [], []
    for c in range(len(ds.classes)):
        idx = np.flatnonzero(ds.labels == c)  # files are already in natural order within a class
        if len(idx) <= train_per_class:
            raise FacestreamError(
                f"class {ds.classes[c]!r} has {len(idx)} images; the file-index split needs more than {train_per_class}"
            )
        train += list(idx[:train_per_class])
        test += list(idx[train_per_class:])
    return np.asarray(train), np.asarray(test)


def split_stratified(ds: FaceDataset, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random split keeping each class's share; every class keeps >= 1 image on each side when it has >= 2."""
    return split_stratified_folds(ds, test_fraction, seed, 1)[0]


def split_stratified_folds(
    ds: FaceDataset, test_fraction: float, seed: int, folds: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index pairs, one per fold: each class's images are permuted (seeded) and fold k takes
    the k-th run of ``round(n * test_fraction)`` of them as its test part, wrapping round when the folds
    need more images than the class has. Fold 0 is ``split_stratified``'s split."""
    if not 0.0 < test_fraction < 1.0:
        raise FacestreamError(f"split fraction must be between 0 and 1, got {test_fraction}")
    if folds < 1:
        raise FacestreamError(f"--val-folds must be 1 or more, got {folds}")
    rng = np.random.default_rng(seed)
    trains: list[list[int]] = [[] for _ in range(folds)]
    tests: list[list[int]] = [[] for _ in range(folds)]
    for c in range(len(ds.classes)):
        idx = rng.permutation(np.flatnonzero(ds.labels == c))
        n_test = int(round(len(idx) * test_fraction))
        n_test = min(max(n_test, 1 if len(idx) >= 2 else 0), len(idx) - 1)
        for k in range(folds):
            turned = np.roll(idx, -k * n_test)
            tests[k] += list(turned[:n_test])
            trains[k] += list(turned[n_test:])
    return [(_sorted_index(tr), _sorted_index(te)) for tr, te in zip(trains, tests, strict=True)]


def _sorted_index(idx: list[int]) -> np.ndarray:
    return np.sort(np.asarray(idx, dtype=np.int64))


def apply_split(
    ds: FaceDataset, policy: str, test_fraction: float = 0.5, seed: int = 0, train_per_class: int = 5
) -> tuple[FaceDataset, FaceDataset | None]:
    """(train, test) under ``policy``: 'none' (all train), 'orl' (file index), 'random' (stratified)."""
    if policy == "none":
        return ds, None
    if policy == "orl":
        tr, te = split_by_file_index(ds, train_per_class)
    elif policy == "random":
        tr, te = split_stratified(ds, test_fraction, seed)
    else:
        raise FacestreamError(f"unknown split policy {policy!r} (choose from: {', '.join(SPLIT_POLICIES)})")
    return ds.subset(tr), ds.subset(te)


class Augmenter:
    """Augmentation aimed at the recipe's stated weaknesses: low light (gain + gamma), blur, pose (small
    affine + mirror) and occlusion (random erasing). Age is out of reach. Works on (H, W) float32 in [0, 1]."""

    def __init__(
        self,
        p_light: float = 0.5,
        p_blur: float = 0.3,
        p_affine: float = 0.7,
        p_flip: float = 0.5,
        p_erase: float = 0.3,
        max_rotate_deg: float = 10.0,
        max_shift: float = 0.06,
    ):
        self.p_light, self.p_blur, self.p_affine, self.p_flip, self.p_erase = (
            p_light,
            p_blur,
            p_affine,
            p_flip,
            p_erase,
        )
        self.max_rotate_deg, self.max_shift = max_rotate_deg, max_shift

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = img.shape
        out = img
        if rng.random() < self.p_affine:
            angle = rng.uniform(-self.max_rotate_deg, self.max_rotate_deg)
            scale = rng.uniform(0.9, 1.1)
            m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
            m[:, 2] += rng.uniform(-self.max_shift, self.max_shift, size=2) * (w, h)
            out = cv2.warpAffine(out, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        if rng.random() < self.p_flip:
            out = out[:, ::-1]
        if rng.random() < self.p_light:
            gain = rng.uniform(0.3, 1.1)  # down to a third of the light
            gamma = float(np.exp(rng.uniform(np.log(0.6), np.log(2.0))))
            out = gain * np.power(np.clip(out, 0.0, 1.0), gamma)
        if rng.random() < self.p_blur:
            sigma = rng.uniform(0.5, 2.0)
            out = cv2.GaussianBlur(np.ascontiguousarray(out, dtype=np.float32), (0, 0), sigma)
        if rng.random() < self.p_erase:
            eh, ew = int(h * rng.uniform(0.15, 0.4)), int(w * rng.uniform(0.15, 0.4))
            y, x = rng.integers(0, h - eh), rng.integers(0, w - ew)
            out = np.array(out, dtype=np.float32, copy=True)
            out[y : y + eh, x : x + ew] = rng.uniform(0.0, 1.0)
        return np.clip(np.ascontiguousarray(out, dtype=np.float32), 0.0, 1.0)

    def batch(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.stack([self(img, rng) for img in images])


# Augmentation levels (``--augment``): Augmenter settings over its defaults ('strong'); 'none' is no augmenter.
# 'strong': every weakness at once (low light, blur, pose, occlusion), for robust deployment models;
# 'pose': every image moved (rotation, scale, shift) and half of them mirrored, nothing else: the regulariser
#   that lets the recipe CNN's 12.8M-weight dense layer generalise from 5 images per person;
# 'mild': mirror, small pose and light changes on some images only.
AUGMENT_PRESETS: dict[str, dict[str, float] | None] = {
    "none": None,
    "mild": {"p_light": 0.3, "p_blur": 0.0, "p_affine": 0.5, "p_erase": 0.0, "max_rotate_deg": 5.0, "max_shift": 0.03},
    "pose": {"p_light": 0.0, "p_blur": 0.0, "p_affine": 1.0, "p_erase": 0.0, "max_rotate_deg": 5.0, "max_shift": 0.05},
    "strong": {},
}
AUGMENT_LEVELS = tuple(AUGMENT_PRESETS)


def make_augmenter(level: str) -> Augmenter | None:
    """The augmenter of a level of :data:`AUGMENT_PRESETS`; None for 'none'."""
    if level not in AUGMENT_PRESETS:
        raise FacestreamError(f"unknown augmentation level {level!r} (choose from: {', '.join(AUGMENT_LEVELS)})")
    preset = AUGMENT_PRESETS[level]
    return None if preset is None else Augmenter(**preset)
