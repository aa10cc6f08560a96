"""Real faces identified end to end through the four processes: LFW photos as two camera streams,
one person enrolled from a photo the streams do not contain."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import pytest

from .helpers import cli, kill_tree, make_config, read_results, start

pytestmark = pytest.mark.slow
LFW = Path(__file__).resolve().parents[3] / "shared" / "data" / "lfw_subset_10x10"


def test_enrolled_person_is_named_and_a_stranger_is_not(tmp_path):
    if not LFW.is_dir():
        pytest.skip(f"real face data not present at {LFW}")
    from facestream.engines.faces.analyzer import FaceAnalyzer
    from facestream.engines.store import ModelStore
    from facestream.pipeline.recognition.gallery import EnrolItem, Gallery

    known, stranger = "Colin_Powell", "Hugo_Chavez"
    photos = sorted((LFW / known).glob("*.jpg"))
    models = ModelStore(tmp_path / "models")
    enrol_rgb = cv2.cvtColor(cv2.imread(str(photos[0])), cv2.COLOR_BGR2RGB)
    faces = FaceAnalyzer("hog", store=models, upsample=1).analyze(enrol_rgb)
    best = max(faces, key=lambda f: f.score)
    with Gallery(tmp_path / "gallery.db") as g:
        g.enrol(known, [EnrolItem(best.embedding, float(best.quality.score), "", str(photos[0]))])

    dirs = {}
    for sid, _person, files in (("cam-a", known, photos[1:8]), ("cam-b", stranger,
                                                               sorted((LFW / stranger).glob("*.jpg"))[:7])):
        d = tmp_path / sid
        d.mkdir()
        for f in files:
            shutil.copy(f, d / f.name)
        dirs[sid] = d
    cfg = make_config(tmp_path, [{"id": sid, "uri": str(d)} for sid, d in dirs.items()],
                      inference={"embed": True, "recognizer": "gallery", "gallery": str(tmp_path / "gallery.db"),
                                 "models_dir": str(tmp_path / "models"), "hog_upsample": 1})
    proc = start(cli("run", str(cfg)), tmp_path / "log.txt")
    try:
        assert proc.wait(300) == 0, (tmp_path / "log.txt").read_text()[-3000:]
    finally:
        kill_tree(proc)
    results = read_results(tmp_path / "out")
    ids = {sid: [f.get("identity") for r in results if r["stream"] == sid for f in r["faces"]] for sid in dirs}
    # A folder is stills: every photo is decided on its own (no tracking, no waiting for n_init hits).
    assert ids["cam-a"].count(known) >= 6 and set(ids["cam-a"]) <= {known, "unknown"}, ids
    assert set(ids["cam-b"]) == {"unknown"}, ids  # a stranger in a photo: unknown, no anonymous id
    events = [json.loads(x) for p in (tmp_path / "out" / "events").glob("*.jsonl") for x in p.read_text().splitlines()]
    named = [(e["stream_id"], e["kind"], e["identity"]) for e in events]
    assert named == [("cam-a", "identified", known)] * ids["cam-a"].count(known), named
