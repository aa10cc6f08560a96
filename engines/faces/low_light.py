"""Dark frames: detect faces in a frame brightened for the detector, and the ffmpeg darkening reproduced.

A frame whose mean luma (BT.601 Y, 0-255) is below ``DARK_LUMA`` is *dark*. For the detector it is
enhanced on luma only: a light edge-preserving denoise (bilateral), a gamma that brings the mean to ~0.45,
then CLAHE (contrast-limited adaptive histogram equalisation, clip 2, 8x8 tiles); colour is kept. Sensor noise
in a dark frame also lowers a true face's HOG score, so HOG runs ``DARK_SCORE_OFFSET`` below its threshold
there. Measured on the 720p street clip and LFW darkened as ffmpeg's
``eq=gamma=0.5:brightness=-0.08,noise=alls=12:allf=t`` does (bench/bench_low_light.py): on every 5th frame plain
HOG upsample 1 finds 24 of the 63 faces it finds in normal light; enhanced with the lower threshold, 60.

The embedder gets a dark frame's chip denoised and brightened the same way, without CLAHE (``enhance_chip``,
applied by ``FaceAnalyzer.describe``); landmarks and quality come from the frame itself.

``simulate_low_light`` is that ffmpeg filter in numpy, for tests and benchmarks: ffmpeg's ``eq`` works on
limited-range Y (16-235) as v = Y/255 + brightness, Y' = 256 v^(1/gamma); ``noise`` adds Gaussian noise of
standard deviation strength/sqrt(3) to Y, Cb and Cr (checked against ffmpeg: residual std 6.9 on a frame).
"""

from __future__ import annotations

import cv2
import numpy as np

DARK_LUMA = 60.0  # street clip: ~106 in normal light, ~32 darkened
DARK_SCORE_OFFSET = -0.4  # HOG score threshold shift on dark frames
# A dark frame's face chip is enhanced for the embedder only below this mean luma. Chosen on LFW (all 100
# photos: every chip darkened as ffmpeg's filter does is below 84, 98% of the normal chips at or above it), so
# that a lit face on a dark background (letterbox, night sky) keeps its own pixels.
DARK_CHIP_LUMA = 84.0
TARGET_MEAN = 0.45  # the enhanced frame's mean luma (fraction of 255)
CLAHE_CLIP = 2.0
CLAHE_TILES = 8


def mean_luma(rgb: np.ndarray) -> float:
    """Mean BT.601 luma of an RGB uint8 frame: the weighted channel means (luma is linear), over every pixel
    with OpenCV's vectorised mean (0.2 ms at 720p, less than a subsampled float copy took)."""
    means = cv2.mean(np.ascontiguousarray(rgb))[:3]
    return float(0.299 * means[0] + 0.587 * means[1] + 0.114 * means[2])


def is_dark(rgb: np.ndarray, threshold: float = DARK_LUMA) -> bool:
    return mean_luma(rgb) < threshold


def enhance_dark(rgb: np.ndarray) -> np.ndarray:
    """The frame brightened for the detector: luma denoised, gamma-lifted to ``TARGET_MEAN``, CLAHE."""
    ycc = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
    y = cv2.bilateralFilter(np.ascontiguousarray(ycc[..., 0]), 5, 20, 3)
    y = cv2.createCLAHE(CLAHE_CLIP, (CLAHE_TILES, CLAHE_TILES)).apply(_gamma_lut(float(y.mean()) / 255.0)[y])
    ycc[..., 0] = y
    return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)


def enhance_chip(chip: np.ndarray) -> np.ndarray:
    """A dark frame's face chip for the embedder: luma denoised as for the detector and gamma-lifted to
    ``TARGET_MEAN``, without CLAHE (which changes a face's look). Chosen on darkened LFW (never the street clip):
    of nine treatments (the detector's enhancement, plain gamma lifts, non-local means, a Gaussian blur, ...) it
    raised the genuine-minus-best-impostor margin most, by ~0.003 cosine at full and half size on two noise
    draws; one draw named at 0.92 is mixed (bench/results/low_light.md: 0.889 -> 0.900 full, 0.862 -> 0.839 half),
    the gain shows with the track's aggregate of several draws (``scheduler``'s uncertain re-check)."""
    ycc = cv2.cvtColor(chip, cv2.COLOR_RGB2YCrCb)
    y = cv2.bilateralFilter(np.ascontiguousarray(ycc[..., 0]), 5, 20, 3)
    ycc[..., 0] = _gamma_lut(float(y.mean()) / 255.0)[y]
    return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)


def _gamma_lut(mean: float) -> np.ndarray:
    """The 8-bit table that maps a luma mean of ``mean`` (0-1) to ``TARGET_MEAN``."""
    mean = max(mean, 1e-3)
    gamma = np.log(TARGET_MEAN) / np.log(mean) if mean < 1.0 else 1.0
    return np.clip(255.0 * (np.arange(256) / 255.0) ** gamma + 0.5, 0, 255).astype(np.uint8)


def for_detector(rgb: np.ndarray, threshold: float = DARK_LUMA) -> tuple[np.ndarray, bool]:
    """(frame for the detector, whether it was dark): enhanced when dark, the frame itself otherwise."""
    if is_dark(rgb, threshold):
        return enhance_dark(rgb), True
    return rgb, False


def simulate_low_light(
    rgb: np.ndarray, rng: np.random.Generator, gamma: float = 0.5, brightness: float = -0.08, noise: float = 12.0
) -> np.ndarray:
    """ffmpeg's ``eq=gamma=..:brightness=..,noise=alls=..`` on an RGB uint8 image (for tests and benches)."""
    ycc = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb).astype(np.float64)
    raw = 16.0 + ycc[..., 0] * 219.0 / 255.0  # limited-range Y, as ffmpeg's filters see it
    v = raw / 255.0 + brightness
    out = np.where(v > 0, 256.0 * np.clip(v, 0, None) ** (1.0 / gamma), 0.0)
    ycc[..., 0] = (np.clip(out, 0, 255) - 16.0) * 255.0 / 219.0
    ycc += rng.normal(0.0, noise / np.sqrt(3.0), ycc.shape)
    return cv2.cvtColor(np.clip(ycc + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_YCrCb2RGB)


class LowLightDetector:
    """A detector whose dark frames are enhanced first (HOG also with its threshold lowered there).

    Everything else (``upsample``, ``score_threshold``, ``backend_name``, ...) is the wrapped detector's.
    """

    def __init__(self, inner, dark_luma: float = DARK_LUMA, score_offset: float = DARK_SCORE_OFFSET):
        self.inner = inner
        self.dark_luma = float(dark_luma)
        self.score_offset = float(score_offset)
        self.dark_frames = 0

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def dark_threshold(self) -> float | None:
        """The score threshold for a dark frame (HOG only; None: the detector's own)."""
        thr = getattr(self.inner, "score_threshold", None)
        return None if thr is None or not hasattr(self.inner, "upsample") else thr + self.score_offset

    def detect(self, rgb: np.ndarray) -> list:
        frame, dark = for_detector(rgb, self.dark_luma)
        if not dark:
            return self.inner.detect(rgb)
        self.dark_frames += 1
        thr = self.dark_threshold()
        return self.inner.detect(frame) if thr is None else self.inner.detect(frame, score_threshold=thr)

    def detect_batch(self, images: list[np.ndarray]) -> list[list]:
        if self.dark_threshold() is not None:  # HOG: one image at a time anyway
            return [self.detect(img) for img in images]
        prepared = [for_detector(img, self.dark_luma) for img in images]
        self.dark_frames += sum(dark for _, dark in prepared)
        return self.inner.detect_batch([frame for frame, _ in prepared])  # the CNN keeps its batching
