"""``inference.detector: {type: mtcnn}`` in a real ``facestream run``: faces found on every frame of a clip, and
named against a gallery enrolled with the default (HOG) detector: MTCNN's boxes feed the same dlib alignment."""

from __future__ import annotations

import os
import shutil
import subprocess

import cv2
import pytest

from .helpers import REPO, astronaut_bgr, cli, make_config, read_results, write_video

pytestmark = pytest.mark.slow


def test_run_with_mtcnn_finds_and_names_the_face(tmp_path, mtcnn_store, dlib_store):
    models = tmp_path / "models"
    shutil.copytree(mtcnn_store.root, models)
    shutil.copytree(dlib_store.root, models, dirs_exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "FACESTREAM_MODELS": str(models),
           "FACESTREAM_GALLERY": str(tmp_path / "g.db")}
    env.pop("FACESTREAM_GALLERY_KEY", None)
    photo = tmp_path / "eileen.png"
    cv2.imwrite(str(photo), astronaut_bgr()[0:300, 90:390])  # her face only (the full photo has a second)
    add = subprocess.run(cli("gallery", "add", "Eileen Collins", str(photo)), cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300)
    assert add.returncode == 0, add.stderr[-2000:]
    video = write_video(tmp_path / "clip.mp4", frames=30, size=(640, 480))
    cfg = make_config(tmp_path, [{"id": "clip", "uri": str(video)}],
                      inference={"detector": {"type": "mtcnn"}, "embed": True, "recognizer": "gallery",
                                 "models_dir": str(models)},
                      metrics={"enabled": False})
    proc = subprocess.run(cli("run", "--config", str(cfg)), cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "detector mtcnn" in proc.stderr
    results = read_results(tmp_path / "out")
    assert len(results) == 30
    assert sum(1 for r in results if r["faces"]) == 30
    assert sum(1 for r in results if any(f.get("identity") == "Eileen Collins" for f in r["faces"])) >= 20
