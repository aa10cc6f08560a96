"""Privacy through a running pipeline (#13), not per function: with `privacy.blur_unknown` and `sink.video`,
the MP4 the sink writes shows the stranger's face blurred and the enrolled person's face sharp, and no crop
of the stranger is stored (events of unknown tracks carry no best shot)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from .helpers import cli, kill_tree, make_config, read_results, start

pytestmark = pytest.mark.slow
LFW = Path(__file__).resolve().parents[3] / "shared" / "data" / "lfw_subset_10x10"
KNOWN, STRANGER = "Colin_Powell", "Hugo_Chavez"


def _detail(img: np.ndarray, box) -> float:
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    return float(cv2.Laplacian(cv2.cvtColor(img[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def _frame(path: Path, index: int) -> np.ndarray:
    """Frame ``index`` of a video, read in order (seeking is not frame-exact for every codec)."""
    video = cv2.VideoCapture(str(path))
    try:
        for _ in range(index + 1):
            ok, frame = video.read()
            assert ok, f"{path} has no frame {index}"
        return frame
    finally:
        video.release()


def test_unknown_face_is_blurred_in_the_video_and_never_cropped(tmp_path):
    if not LFW.is_dir():
        pytest.skip(f"real face data not present at {LFW}")
    from facestream.engines.faces.analyzer import FaceAnalyzer
    from facestream.engines.store import ModelStore
    from facestream.pipeline.recognition.gallery import EnrolItem, Gallery

    known_photos = sorted((LFW / KNOWN).glob("*.jpg"))
    models = ModelStore(tmp_path / "models")
    enrol = cv2.cvtColor(cv2.imread(str(known_photos[0])), cv2.COLOR_BGR2RGB)
    best = max(FaceAnalyzer("hog", store=models, upsample=1).analyze(enrol), key=lambda f: f.score)
    with Gallery(tmp_path / "gallery.db") as g:
        g.enrol(KNOWN, [EnrolItem(best.embedding, float(best.quality.score), "", str(known_photos[0]))])

    # One camera sees both: the enrolled person (another photo) on the left, the stranger on the right.
    scene = np.hstack([cv2.imread(str(known_photos[1])), cv2.imread(str(sorted((LFW / STRANGER).glob("*.jpg"))[0]))])
    scene = cv2.resize(scene, (scene.shape[1] * 2, scene.shape[0] * 2))
    clip = tmp_path / "scene.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10, (scene.shape[1], scene.shape[0]))
    for _ in range(12):
        writer.write(scene)
    writer.release()
    cfg = make_config(tmp_path, [{"id": "cam", "uri": str(clip)}],
                      inference={"embed": True, "recognizer": "gallery", "gallery": str(tmp_path / "gallery.db"),
                                 "models_dir": str(tmp_path / "models"), "hog_upsample": 1},
                      sink={"video": True, "crops": True}, privacy={"blur_unknown": True})
    proc = start(cli("run", str(cfg)), tmp_path / "log.txt")
    try:
        assert proc.wait(240) == 0, (tmp_path / "log.txt").read_text()[-3000:]
    finally:
        kill_tree(proc)
    out = tmp_path / "out"
    both = [r for r in read_results(out)
            if {f.get("identity") == KNOWN for f in r["faces"]} == {True, False} and len(r["faces"]) == 2]
    assert both, "no frame with the known person named and the stranger not"
    last = both[-1]
    frame, source = _frame(out / "cam.mp4", last["seq"]), _frame(clip, last["seq"])  # as written, as captured
    for face in last["faces"]:
        x1, y1, x2, y2 = face["box"]
        inner = (x1 + 0.2 * (x2 - x1), y1 + 0.2 * (y2 - y1), x2 - 0.2 * (x2 - x1), y2 - 0.2 * (y2 - y1))
        ratio = _detail(frame, inner) / _detail(source, inner)
        if face.get("identity") == KNOWN:
            assert ratio > 0.8, f"the enrolled person's face must stay sharp (detail ratio {ratio:.2f})"
        else:  # blurred: ~0.2 (what is left is the MP4's block noise); unblurred faces measure ~1.0
            assert ratio < 0.4, f"the stranger's face must be blurred (detail ratio {ratio:.2f})"
    events = [json.loads(x) for p in (out / "events").glob("*.jsonl") for x in p.read_text().splitlines()]
    assert not [e for e in events if e.get("best_shot_path") and e.get("identity") != KNOWN], events
    crops = sorted(p.resolve() for p in (out / "crops").rglob("*.jpg")) if (out / "crops").is_dir() else []
    known_shots = {Path(e["best_shot_path"]).resolve() for e in events if e.get("best_shot_path")}
    assert set(crops) <= known_shots, f"crop files not of the enrolled person: {set(crops) - known_shots}"
