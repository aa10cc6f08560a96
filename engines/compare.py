"""Comparing two backends' outputs (max abs error, cosine similarity) and making inputs to compare them on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facestream.fsutil import is_image_file

from .manifest import Manifest, TensorSpec
from .trt.profiles import ProfileConfig, derive_profiles


@dataclass(frozen=True)
class OutputDiff:
    name: str
    max_abs: float
    cosine: float


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a64, b64 = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    na, nb = np.linalg.norm(a64), np.linalg.norm(b64)
    if na == 0 or nb == 0:
        return 1.0 if na == nb else 0.0
    return float(a64 @ b64 / (na * nb))


def compare_outputs(reference: dict[str, np.ndarray], other: dict[str, np.ndarray]) -> list[OutputDiff]:
    out = []
    for name, ref in reference.items():
        got = other[name]
        if got.shape != ref.shape:
            out.append(OutputDiff(name, float("inf"), 0.0))
            continue
        diff = np.abs(got.astype(np.float64) - ref.astype(np.float64))
        out.append(OutputDiff(name, float(diff.max()) if diff.size else 0.0, cosine(ref, got)))
    return out


def _dims(spec: TensorSpec, sizes: dict[str, int]) -> list[int]:
    return [d if isinstance(d, int) else sizes.get(d, 1) for d in spec.shape]


def random_inputs(manifest: Manifest, batch: int = 1, seed: int = 0, config: ProfileConfig | None = None):
    """Random inputs of ``batch`` items; other dynamic axes at their profile ``opt``; values in value_range."""
    rng = np.random.default_rng(seed)
    profiles = derive_profiles(manifest, config)
    out = {}
    for spec in manifest.inputs:
        opt = profiles[spec.name].opt
        sizes = {
            d: (batch if d == "batch" else opt[i]) for i, d in enumerate(spec.shape) if isinstance(d, str)
        }
        lo, hi = spec.value_range or (-1.0, 1.0)
        out[spec.name] = rng.uniform(lo, hi, _dims(spec, sizes)).astype(spec.dtype)
    return out


def image_layout(spec: TensorSpec) -> tuple[str, int, int, int] | None:
    """('nchw'|'nhwc', channels, height, width) for a fixed-size image input, else None."""
    s = spec.shape
    if len(s) != 4 or not all(isinstance(d, int) for d in s[1:]):
        return None
    if s[1] in (1, 3):
        return "nchw", int(s[1]), int(s[2]), int(s[3])
    if s[3] in (1, 3):
        return "nhwc", int(s[3]), int(s[1]), int(s[2])
    return None


def real_image_inputs(manifest: Manifest, folder: Path, limit: int = 16) -> dict[str, np.ndarray] | None:
    """Images from ``folder`` (recursively) resized to a single image input, scaled into its value_range.

    Returns None when the model does not take one fixed-size image or the folder has no images.
    """
    import cv2

    if len(manifest.inputs) != 1:
        return None
    spec = manifest.inputs[0]
    layout = image_layout(spec)
    if layout is None:
        return None
    order, channels, height, width = layout
    paths = sorted(p for p in Path(folder).rglob("*") if is_image_file(p))[:limit]
    images = []
    for path in paths:
        img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR)
        if img is None:
            continue
        img = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        img = img.reshape(height, width, channels)
        images.append(img.transpose(2, 0, 1) if order == "nchw" else img)
    if not images:
        return None
    batch = np.stack(images)
    lo, hi = spec.value_range or (0.0, 1.0)
    return {spec.name: (batch * (hi - lo) + lo).astype(spec.dtype)}
