"""A track whose score sits just below the threshold (a noisy, e.g. dark, face) is re-embedded on its next faces,
so that the aggregate of several noisy embeddings decides, and is named; without the re-check it stays unknown
until the periodic re-verification."""

from dataclasses import dataclass

import numpy as np

from facestream.pipeline.recognition.batch import recognise_frames
from facestream.pipeline.recognition.gallery import EnrolItem, Gallery
from facestream.pipeline.recognition.scheduler import SchedulerConfig
from facestream.pipeline.recognition.stream_recognizer import RecognizerConfig, StreamRecognizer

CENTRE = np.random.default_rng(1).normal(size=128)
CENTRE /= np.linalg.norm(CENTRE)
NOISE = 0.4556  # one embedding scores 1 / sqrt(1 + NOISE^2) = 0.91 against CENTRE; the mean of 3 about 0.97
FRAME_NS = 40_000_000


@dataclass
class NoisyFace:
    box: np.ndarray
    quality: float
    chip: np.ndarray  # its first pixel is the frame number: the fake embedder's noise seed


def embed(chips: np.ndarray) -> np.ndarray:
    out = []
    for c in chips:
        noise = np.random.default_rng(int(c[0, 0, 0])).normal(size=128)
        noise -= (noise @ CENTRE) * CENTRE  # orthogonal: every single embedding scores exactly 0.91
        v = CENTRE + NOISE * noise / np.linalg.norm(noise)
        out.append(v / np.linalg.norm(v))
    return np.array(out, np.float32)


def first_named_frame(tmp_path, uncertain_frames: int) -> int | None:
    g = Gallery(tmp_path / f"g{uncertain_frames}.db")
    g.enrol("Alice", [EnrolItem(CENTRE, 0.9, "alice-1")])
    rec = StreamRecognizer(g, config=RecognizerConfig(
        threshold=0.92, scheduler=SchedulerConfig(uncertain_margin=0.02, uncertain_frames=uncertain_frames)))
    try:
        for f in range(30):  # 1.2 s: before the 2 s periodic re-check
            chip = np.full((150, 150, 3), f, np.uint8)
            face = NoisyFace(np.array([100, 100, 180, 180.0]), 0.6, chip)
            (res,) = recognise_frames(rec, [("cam", f, f * FRAME_NS, [face])], embed)
            if res.tracks[0].name == "Alice":
                return f
        return None
    finally:
        g.close()


def test_a_near_threshold_track_is_named_after_a_few_more_embeddings(tmp_path):
    assert embed(np.full((1, 150, 150, 3), 7, np.uint8))[0] @ CENTRE < 0.92  # one embedding is not enough
    named = first_named_frame(tmp_path, uncertain_frames=5)
    assert named is not None and named <= 6  # confirmed at frame 2, then one or two more embeddings
    assert first_named_frame(tmp_path, uncertain_frames=0) is None
