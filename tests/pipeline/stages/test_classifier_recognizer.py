"""Closed-set mode: the inference stage's face work names faces with a classifier trained and exported by
`facestream train` / `facestream export` (the recipe's 128x128 grey crop), with "unknown" below threshold."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from facestream.pipeline.config import load_config

REPO = Path(__file__).resolve().parents[3]


def _views(rgb: np.ndarray, n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    h, w = rgb.shape[:2]
    out = []
    for _ in range(n):
        m = cv2.getRotationMatrix2D((w / 2, h / 2), float(rng.uniform(-8, 8)), float(rng.uniform(0.9, 1.1)))
        img = cv2.warpAffine(rgb, m, (w, h), borderMode=cv2.BORDER_REFLECT)
        out.append(np.clip(img.astype(np.float32) * rng.uniform(0.7, 1.2), 0, 255).astype(np.uint8))
    return out


def test_trained_classifier_names_the_face_in_the_frame(tmp_path):
    pytest.importorskip("torch")
    from skimage import data

    from facestream.engines.faces.align import grey_crop_128
    from facestream.engines.faces.analyzer import FaceAnalyzer
    from facestream.pipeline.stages.face_work import FaceWork

    astronaut = np.ascontiguousarray(data.astronaut())
    analyzer = FaceAnalyzer("hog", upsample=1)
    folder = tmp_path / "faces"
    for name, views in (("eileen", _views(astronaut, 12, 0)),
                        ("noise", [np.random.default_rng(k).integers(0, 255, (200, 200, 3), np.uint8)
                                   for k in range(12)])):
        (folder / name).mkdir(parents=True)
        for k, img in enumerate(views):
            faces = analyzer.analyze(img, embed=False) if name == "eileen" else []
            box = (0, 0, img.shape[1], img.shape[0])
            crop = grey_crop_128(img, faces[0].landmarks if faces else box, order="rgb")
            cv2.imwrite(str(folder / name / f"{k}.png"), (crop * 255).astype(np.uint8))
    store = tmp_path / "models"
    run = tmp_path / "run"
    for args in (["train", "--arch", "seed-attention", "--data", str(folder), "--split", "none", "--epochs", "25",
                  "--augment", "none", "--out", str(run)],
                 ["export", "--model", str(run), "--name", "eileen-clf", "--store", str(store),
                  "--unknown-threshold", "0.5"]):
        r = subprocess.run([sys.executable, "-m", "facestream.pipeline.cli", *args], cwd=REPO, capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
    cfg = load_config(None, environ={}, overrides={"inference": {
        "recognizer": "classifier", "classifier_model": "eileen-clf", "models_dir": str(store), "min_face": 40,
        "hog_upsample": 0}})
    work = FaceWork(cfg, logging.getLogger("test"))
    frame = _views(astronaut, 1, 99)[0]
    (faces, _events), = work.run([("cam", 0, 0, frame, 1.0)])
    assert len(faces) == 1
    assert faces[0].identity == "eileen" and faces[0].confidence >= 0.5, faces
