"""Sequences of face embeddings for the temporal heads, built from real identity folders. No torch here.

1. Every image of ``root/<person>/<image>`` is aligned to a 150x150 chip (``engines.faces`` when present,
   else dlib's 5-point alignment; a photo whose face is not detected, like ORL's tight crops, is aligned
   from the whole frame).
2. Each chip gets ``variants`` degraded copies, the degradations of real video: blur, low light with sensor
   noise, pose jitter (rotation/scale/shift before the crop), and tiny faces (down- then up-scaled).
3. All chips are embedded (128-d) and scored for quality; the result is an :class:`EmbeddingBank`, cached
   as .npz because embedding thousands of chips on a CPU takes minutes.
4. :func:`sample_track` draws simulated tracks: frames of one person from one or two source photos with
   random degradations, random length and dropped frames.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from engines.errors import FacestreamError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".pgm", ".jpg", ".jpeg", ".png", ".bmp")
CHIP_SIZE = 150
BANK_VERSION = 2


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
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(
            tmp,
            embeddings=self.embeddings,
            quality=self.quality,
            person=self.person,
            image=self.image,
            variant=self.variant,
            people=np.array(self.people),
        )
        tmp.replace(path)

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
            (f for f in p.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS),
            key=lambda f: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", f.stem)],
        )
        if len(files) >= 2:
            out[prefix + p.name] = files
    if not out:
        raise FacestreamError(f"identity folder {root} has no person folders with 2+ images")
    return out


def _dlib_model_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FacestreamError(
            "face-recognition-models is not installed (pip install face-recognition-models)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


class ChipEmbedder:
    """Aligns photos to chips and embeds chips: ``engines.faces`` when it is there, else dlib directly."""

    def __init__(self):
        import dlib

        models = _dlib_model_dir()
        self._dlib = dlib
        self._shape = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
        self._detector = dlib.get_frontal_face_detector()
        self._faces_embedder = None
        try:
            from engines.faces import FaceEmbedder

            self._faces_embedder = FaceEmbedder()
            self.backend = "engines.faces"
        except Exception as exc:  # noqa: BLE001 - any failure: fall back to dlib, and say so
            log.info("engines.faces unavailable (%s); embedding with dlib directly", exc)
            self._facerec = dlib.face_recognition_model_v1(
                str(models / "dlib_face_recognition_resnet_model_v1.dat")
            )
            self.backend = "dlib"

    def align(self, rgb: np.ndarray) -> np.ndarray:
        """Largest detected face (or the whole frame) -> 150x150 RGB chip."""
        dets = self._detector(rgb, 1)
        if len(dets):
            rect = max(dets, key=lambda r: r.width() * r.height())
        else:
            rect = self._dlib.rectangle(0, 0, rgb.shape[1] - 1, rgb.shape[0] - 1)
        shape = self._shape(rgb, rect)
        return np.asarray(self._dlib.get_face_chip(rgb, shape, size=CHIP_SIZE, padding=0.25))

    def embed(self, chips: list[np.ndarray]) -> np.ndarray:
        if self._faces_embedder is not None:
            out = np.asarray(self._faces_embedder.embed(np.stack(chips)), dtype=np.float32)
        else:
            out = np.array([np.asarray(v) for v in self._facerec.compute_face_descriptor(chips)], np.float32)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def read_rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise FacestreamError(f"cannot read image {path}")
    return np.ascontiguousarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))


def degrade(chip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random video-like degradation mix of a 150x150 RGB chip."""
    out = chip.astype(np.float32)
    if rng.random() < 0.7:  # pose jitter
        angle = rng.uniform(-20, 20)
        scale = rng.uniform(0.85, 1.15)
        m = cv2.getRotationMatrix2D((CHIP_SIZE / 2, CHIP_SIZE / 2), angle, scale)
        m[:, 2] += rng.uniform(-0.08, 0.08, 2) * CHIP_SIZE
        out = cv2.warpAffine(out, m, (CHIP_SIZE, CHIP_SIZE), borderMode=cv2.BORDER_REFLECT)
    if rng.random() < 0.4:  # tiny face
        side = int(rng.uniform(18, 60))
        out = cv2.resize(cv2.resize(out, (side, side), interpolation=cv2.INTER_AREA), (CHIP_SIZE, CHIP_SIZE))
    if rng.random() < 0.6:  # motion / focus blur
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.8, 4.0))
    if rng.random() < 0.5:  # low light with sensor noise
        out = out * rng.uniform(0.12, 0.7)
        out = out + rng.normal(0, rng.uniform(2, 10), out.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


def chip_quality(chip: np.ndarray) -> float:
    """Quality in [0, 1] from sharpness, brightness and contrast of a chip.

    Uses ``engines.faces.quality.chip_quality`` when that exists so training sees the pipeline's score.
    """
    try:
        from engines.faces.quality import chip_quality as faces_chip_quality  # type: ignore[attr-defined]

        return float(faces_chip_quality(chip))
    except (ImportError, AttributeError):
        pass
    grey = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY).astype(np.float32)
    centre = grey[25:125, 25:125]
    sharp = float(cv2.Laplacian(centre, cv2.CV_32F).var())
    q_sharp = sharp / (sharp + 150.0)
    q_light = float(np.clip(centre.mean() / 90.0, 0, 1))
    q_contrast = float(np.clip(centre.std() / 40.0, 0, 1))
    return float(np.clip(q_sharp**0.5 * q_light**0.5 * q_contrast**0.3, 0, 1))


def bank_cache_path(folders: dict[str, Path], variants: int, seed: int) -> Path:
    import os

    key = hashlib.sha256(
        repr((BANK_VERSION, sorted((k, str(v)) for k, v in folders.items()), variants, seed)).encode()
    ).hexdigest()[:16]
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "facestream" / f"temporal-bank-{key}.npz"


def build_bank(
    folders: dict[str, Path], variants: int = 6, seed: int = 0, cache: Path | None | bool = True
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
    embedder = ChipEmbedder()
    embs, quals, pers, imgs, vars_ = [], [], [], [], []
    image_index = 0
    for pi, name in enumerate(names):
        chips, meta = [], []
        for f in people[name]:
            chip = embedder.align(read_rgb(f))
            for v in range(variants + 1):
                c = chip if v == 0 else degrade(chip, rng)
                chips.append(c)
                meta.append((image_index, v, chip_quality(c)))
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
