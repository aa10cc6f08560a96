"""Sequences of face embeddings for the temporal heads, built from real identity folders. No torch here.

1. Every image of ``root/<person>/<image>`` is aligned to a 150x150 chip with ``engines/faces/`` (a photo
   whose face is not detected, like some of ORL's tight crops, is aligned from the whole frame).
2. Each chip gets ``variants`` degraded copies, the degradations of real video: blur, low light with sensor
   noise, pose jitter (rotation/scale/shift before the crop), and tiny faces (down- then up-scaled).
3. All chips are embedded (128-d) and scored with the pipeline's quality score; the result is an :class:`EmbeddingBank`, cached
   as .npz because embedding thousands of chips on a CPU takes minutes.
4. :func:`sample_track` draws simulated tracks: frames of one person from one or two source photos with
   random degradations, random length and dropped frames.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facestream.engines.faces.vectors import CHIP_SIZE, l2_normalise
from facestream.errors import FacestreamError
from facestream.fsutil import atomic_open, is_image_file

log = logging.getLogger(__name__)

BANK_VERSION = 3


@dataclass
class EmbeddingBank:
    """Embeddings of every (image, variant): variant 0 is the clean chip."""

    embeddings: np.ndarray  # (N, 128) float32, unit norm
    quality: np.ndarray  # (N,) float32 in [0, 1]
    person: np.ndarray  # (N,) int index into people
    image: np.ndarray  # (N,) int, global image index
    variant: np.ndarray  # (N,) int
    people: list[str]

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(path) as f:
            np.savez_compressed(
                f,
                embeddings=self.embeddings,
                quality=self.quality,
                person=self.person,
                image=self.image,
                variant=self.variant,
                people=np.array(self.people),
            )

    @classmethod
    def load(cls, path: Path) -> EmbeddingBank:
        z = np.load(path)
        return cls(
            z["embeddings"],
            z["quality"],
            z["person"],
            z["image"],
            z["variant"],
            [str(p) for p in z["people"]],
        )

    def select_people(self, names: list[str]) -> EmbeddingBank:
        keep = np.isin(np.array(self.people)[self.person], names)
        remap = {self.people.index(n): i for i, n in enumerate(names)}
        return EmbeddingBank(
            self.embeddings[keep],
            self.quality[keep],
            np.array([remap[p] for p in self.person[keep]], dtype=np.int64),
            self.image[keep],
            self.variant[keep],
            list(names),
        )


def list_identity_folder(root: Path, prefix: str = "") -> dict[str, list[Path]]:
    """``root/<person>/<image>`` -> {prefix+person: [image paths]} (people with at least 2 images)."""
    root = Path(root)
    if not root.is_dir():
        raise FacestreamError(f"identity folder {root} does not exist")
    out = {}
    for p in sorted(x for x in root.iterdir() if x.is_dir() and not x.name.startswith(".")):
        files = sorted(
            (f for f in p.iterdir() if is_image_file(f)),
            key=lambda f: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", f.stem)],
        )
        if len(files) >= 2:
            out[prefix + p.name] = files
    if not out:
        raise FacestreamError(f"identity folder {root} has no person folders with 2+ images")
    return out


@dataclass
class AlignedFace:
    chip: np.ndarray  # (150, 150, 3) uint8 RGB
    landmarks: np.ndarray  # (5, 2) in image pixels
    size_px: float  # shorter side of the face box


class ChipEmbedder:
    """Aligns photos to chips and embeds them with ``engines/faces/`` (HOG detector, dlib 5-point landmarks,
    the ONNX dlib embedder), the same code path as the pipeline. A photo without a detected face (ORL's
    tight crops) is aligned from the whole frame."""

    def __init__(self, store=None):
        try:
            from facestream.engines.faces.align import face_chip
            from facestream.engines.faces.detector import HogDetector
            from facestream.engines.faces.embedder import FaceEmbedder
            from facestream.engines.faces.landmarks import LandmarkPredictor
        except ImportError as exc:
            raise FacestreamError(f"temporal training data needs facestream.engines.faces ({exc})") from exc
        self._detectors = [HogDetector(upsample=0), HogDetector(upsample=1)]
        self._landmarks = LandmarkPredictor()
        self._face_chip = face_chip
        self._embedder = FaceEmbedder(store=store)

    def align(self, rgb: np.ndarray) -> AlignedFace:
        """Largest detected face (or the whole frame) -> aligned chip, landmarks and face size."""
        box = None
        for det in self._detectors:  # no upsampling first: LFW faces are large, and it is 4x cheaper
            found = det.detect(rgb)
            if found:
                box = max((d.box for d in found), key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
                break
        if box is None:
            box = (0.0, 0.0, float(rgb.shape[1]), float(rgb.shape[0]))
        lm = self._landmarks.predict(rgb, box)
        size = float(min(box[2] - box[0], box[3] - box[1]))
        return AlignedFace(self._face_chip(rgb, lm), lm, size)

    def embed(self, chips: list[np.ndarray]) -> np.ndarray:
        out = np.asarray(self._embedder.embed(np.stack(chips)), dtype=np.float32)
        return l2_normalise(out)


def read_rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise FacestreamError(f"cannot read image {path}")
    return np.ascontiguousarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))


def degrade(chip: np.ndarray, rng: np.random.Generator, size_px: float = 100.0) -> tuple[np.ndarray, float]:
    """One random video-like degradation mix of a 150x150 RGB chip; returns it and the face size it
    simulates (a tiny face is one that was that small in the frame)."""
    out = chip.astype(np.float32)
    if rng.random() < 0.7:  # pose jitter
        angle = rng.uniform(-20, 20)
        scale = rng.uniform(0.85, 1.15)
        m = cv2.getRotationMatrix2D((CHIP_SIZE / 2, CHIP_SIZE / 2), angle, scale)
        m[:, 2] += rng.uniform(-0.08, 0.08, 2) * CHIP_SIZE
        out = cv2.warpAffine(out, m, (CHIP_SIZE, CHIP_SIZE), borderMode=cv2.BORDER_REFLECT)
    if rng.random() < 0.4:  # tiny face
        side = int(rng.uniform(18, 60))
        size_px = min(size_px, side / 1.5)  # the chip shows the face with 25% padding on each side
        out = cv2.resize(cv2.resize(out, (side, side), interpolation=cv2.INTER_AREA), (CHIP_SIZE, CHIP_SIZE))
    if rng.random() < 0.6:  # motion / focus blur
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.8, 4.0))
    if rng.random() < 0.5:  # low light with sensor noise
        out = out * rng.uniform(0.12, 0.7)
        out = out + rng.normal(0, rng.uniform(2, 10), out.shape)
    return np.clip(out, 0, 255).astype(np.uint8), size_px


def chip_quality(chip: np.ndarray, landmarks: np.ndarray, size_px: float) -> float:
    """The pipeline's quality score (``engines/faces/quality.py`` face_quality) of a (degraded) chip, so the
    heads learn on the same scale they see at run time."""
    from facestream.engines.faces.quality import face_quality

    return float(face_quality(chip, (0.0, 0.0, size_px, size_px), landmarks, chip=chip).score)


def bank_cache_path(folders: dict[str, Path], variants: int, seed: int) -> Path:
    import os

    key = hashlib.sha256(
        repr((BANK_VERSION, sorted((k, str(v)) for k, v in folders.items()), variants, seed)).encode()
    ).hexdigest()[:16]
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "facestream" / f"temporal-bank-{key}.npz"


def build_bank(
    folders: dict[str, Path], variants: int = 6, seed: int = 0, cache: Path | None | bool = True, store=None
) -> EmbeddingBank:
    """Embed every image of the identity folders (``{prefix: root}``) plus ``variants`` degraded copies."""
    cache_path = bank_cache_path(folders, variants, seed) if cache is True else (cache or None)
    if cache_path and Path(cache_path).is_file():
        return EmbeddingBank.load(Path(cache_path))
    rng = np.random.default_rng(seed)
    people: dict[str, list[Path]] = {}
    for prefix, root in folders.items():
        people.update(list_identity_folder(Path(root), prefix=f"{prefix}/"))
    names = sorted(people)
    embedder = ChipEmbedder(store)
    embs, quals, pers, imgs, vars_ = [], [], [], [], []
    image_index = 0
    for pi, name in enumerate(names):
        chips, meta = [], []
        for f in people[name]:
            face = embedder.align(read_rgb(f))
            for v in range(variants + 1):
                c, size = (face.chip, face.size_px) if v == 0 else degrade(face.chip, rng, face.size_px)
                chips.append(c)
                meta.append((image_index, v, chip_quality(c, face.landmarks, size)))
            image_index += 1
        embs.append(embedder.embed(chips))
        for img, v, q in meta:
            quals.append(q)
            pers.append(pi)
            imgs.append(img)
            vars_.append(v)
        log.info("embedded %s (%d chips, %d/%d people)", name, len(chips), pi + 1, len(names))
    bank = EmbeddingBank(
        np.concatenate(embs).astype(np.float32),
        np.asarray(quals, np.float32),
        np.asarray(pers, np.int64),
        np.asarray(imgs, np.int64),
        np.asarray(vars_, np.int64),
        names,
    )
    if cache_path:
        bank.save(Path(cache_path))
    return bank


def sample_track(
    bank: EmbeddingBank,
    person: int,
    rng: np.random.Generator,
    exclude_images: set[int] | frozenset[int] = frozenset(),
    min_len: int = 3,
    max_len: int = 24,
    drop_rate: float = 0.2,
) -> tuple[np.ndarray, np.ndarray]:
    """A simulated track of ``person``: (T, 128) embeddings and (T,) qualities.

    Frames come from one or two of the person's photos (a track sees one appearance, sometimes two), each
    frame a random variant of that photo; ``drop_rate`` of the frames are dropped (detector misses).
    """
    rows = np.flatnonzero((bank.person == person) & ~np.isin(bank.image, list(exclude_images)))
    if not len(rows):
        raise ValueError(f"person {bank.people[person]} has no images left for tracks")
    photos = np.unique(bank.image[rows])
    chosen = rng.choice(photos, size=min(len(photos), int(rng.integers(1, 3))), replace=False)
    pool = rows[np.isin(bank.image[rows], chosen)]
    length = int(rng.integers(min_len, max_len + 1))
    frames = rng.choice(pool, size=length, replace=True)
    keep = rng.random(length) >= drop_rate
    if keep.sum() < 1:
        keep[0] = True
    frames = frames[keep]
    return bank.embeddings[frames], bank.quality[frames]
