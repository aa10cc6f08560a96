"""`facestream run video.mp4` and `facestream run photos/` end to end: progress on stderr, results in files,
JSON on stdout only with `--stdout json`; a folder of photos of enrolled people gets their names (LFW)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .helpers import REPO, cli, lfw_split, read_results, read_summary, write_video

pytestmark = pytest.mark.slow
LFW = REPO.parent / "shared" / "data" / "lfw_subset_10x10"


def _run(tmp_path: Path, *argv: str) -> tuple[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "FACESTREAM__METRICS__ENABLED": "false",
           "FACESTREAM__TRANSPORT__RUN_DIR": str(tmp_path / "run"), "FACESTREAM_GALLERY": str(tmp_path / "g.db"),
           "FACESTREAM_MODELS": str(tmp_path / "models")}
    env.pop("FACESTREAM_GALLERY_KEY", None)
    proc = subprocess.run(cli(*argv), cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, proc.stderr


def test_run_a_video_file_streams_json_to_stdout_only_when_asked(tmp_path):
    video = write_video(tmp_path / "clip.mp4", frames=40)
    out = tmp_path / "out"
    stdout, stderr = _run(tmp_path, "run", str(video), "--stdout", "json", "--out", str(out))
    lines = stdout.splitlines()
    assert len(lines) == 40 and len(read_results(out)) == 40, stdout[-500:]
    records = [json.loads(line) for line in lines]  # every stdout line is a result, nothing else
    assert {r["stream"] for r in records} == {"clip"} and sorted(r["seq"] for r in records) == list(range(40))
    assert "facestream: clip 40/40 frames (100%)" in stderr and read_summary(out)["streams"]["clip"]["lost"] == 0


@pytest.mark.needs_data
@pytest.mark.skipif(not LFW.is_dir(), reason=f"LFW subset not found at {LFW} (../shared/data is absent)")
def test_run_a_folder_of_photos_of_enrolled_people_names_them(tmp_path):
    probes, truth = tmp_path / "photos", {}
    probes.mkdir()
    for name, photo, others in lfw_split(LFW):
        _run(tmp_path, "gallery", "add", name, str(photo))
        for other in others:
            shutil.copy(other, probes / other.name)
            truth[other.name] = name
    assert len(truth) >= 80
    out = tmp_path / "out"
    stdout, stderr = _run(tmp_path, "run", str(probes), "--out", str(out))
    assert stdout == ""  # results in files; the terminal gets progress and the summary (stderr)
    assert f"facestream: photos {len(truth)}/{len(truth)} frames (100%)" in stderr, stderr[-2000:]
    named: dict[str, set] = {}
    for r in read_results(out):
        assert all(f.get("track") is None and f.get("identity") for f in r["faces"])  # decided per photo
        named.setdefault(r["file"], set()).update(f["identity"] for f in r["faces"])
    wrong = {f: n for f, names in named.items() for n in names if n not in ("unknown", truth[f])}
    right = sum(1 for f, person in truth.items() if person in named.get(f, set()))
    assert not wrong, wrong
    assert right >= 0.98 * len(truth), f"{right}/{len(truth)} identified"
    events = [json.loads(line) for p in (out / "events").glob("*.jsonl") for line in p.read_text().splitlines()]
    assert {e["kind"] for e in events} == {"identified"} and len(events) >= right  # one per named face


def test_run_a_folder_names_a_face_under_40_px_in_a_thumbnail(tmp_path):
    """A 300x400 photo holding the astronaut's face at 23 px, enrolled from a crop of the full image:
    preprocess enlarges the small photo before HOG's own 2x, so `facestream run photos/` names her."""
    import cv2
    import numpy as np
    from skimage.data import astronaut

    rgb = astronaut()
    crop, photos = tmp_path / "eileen.png", tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(crop), cv2.cvtColor(rgb[20:260, 110:340], cv2.COLOR_RGB2BGR))
    thumb = np.full((300, 400, 3), 127, np.uint8)
    thumb[100:228, 150:278] = cv2.resize(rgb, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(photos / "thumb.png"), cv2.cvtColor(thumb, cv2.COLOR_RGB2BGR))
    _run(tmp_path, "gallery", "add", "eileen", str(crop))
    out = tmp_path / "out"
    _run(tmp_path, "run", str(photos), "--out", str(out))
    (result,) = read_results(out)
    (face,) = result["faces"]
    assert face["identity"] == "eileen" and face["box"][2] - face["box"][0] < 32, face
