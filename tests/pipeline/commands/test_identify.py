"""``facestream identify`` on real faces: a folder of photos of enrolled people gets their names.

The LFW test is the issue's acceptance test: one enrolable photo per person enrolled with --enrol-from, every
other photo identified, at least 98% named correctly and no wrong name. The data-free tests use scikit-image's
astronaut photo.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from facestream.pipeline.cli import main
from facestream.pipeline.recognition.stills import tolerance_to_threshold

LFW = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "lfw_subset_10x10"


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("FACESTREAM_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("FACESTREAM_GALLERY", str(tmp_path / "default-gallery.db"))
    monkeypatch.delenv("FACESTREAM_GALLERY_KEY", raising=False)


def _astronaut_bgr() -> np.ndarray:
    from skimage.data import astronaut

    return cv2.cvtColor(np.ascontiguousarray(astronaut()), cv2.COLOR_RGB2BGR)


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main(["identify", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_tolerance_maps_to_the_cosine_of_unit_vectors():
    assert tolerance_to_threshold(0.0) == 1.0
    assert abs(tolerance_to_threshold(0.4) - 0.92) < 1e-9


def test_identify_names_the_enrolled_person_and_skips_unreadable_files(tmp_path, capsys):
    img = _astronaut_bgr()
    known = tmp_path / "known" / "Eileen Collins"
    known.mkdir(parents=True)
    # Enrolled from a mirrored, slightly darker view; identified on the original and a rescaled copy.
    cv2.imwrite(str(known / "a.png"), np.clip(img[0:330, ::-1][:, 32:362] * 0.85, 0, 255).astype(np.uint8))
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "one.jpg"), img)
    cv2.imwrite(str(photos / "two.png"), cv2.resize(img, (384, 384)))
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    code, out, err = _run(capsys, photos, "--enrol-from", tmp_path / "known")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 1, err  # one file was skipped
    named = [(Path(r["file"]).name, r["name"]) for r in rows if r["name"] != "unknown"]
    assert named == [("one.jpg", "Eileen Collins"), ("two.png", "Eileen Collins")], out
    assert float(rows[0]["similarity"]) >= 0.92
    x1, y1, x2, y2 = (float(rows[0][k]) for k in ("x1", "y1", "x2", "y2"))
    assert 150 < x1 < 230 and 40 < y1 < 120 and x2 - x1 > 60, rows[0]  # her face, in file pixels
    skipped = [line for line in err.splitlines() if "skipped " in line]
    assert len(skipped) == 1 and "broken.jpg" in skipped[0] and "Traceback" not in err
    assert f"2 images, {len(rows)} faces, 1 skipped" in err


def test_identify_json_lists_candidates_and_unknowns(tmp_path, capsys):
    img = _astronaut_bgr()
    known = tmp_path / "known" / "Eileen Collins"
    known.mkdir(parents=True)
    cv2.imwrite(str(known / "a.png"), img[0:330, ::-1][:, 32:362])
    target = tmp_path / "x.png"
    cv2.imwrite(str(target), img)
    code, out, _ = _run(capsys, target, "--enrol-from", tmp_path / "known", "--json", "--tolerance", "0.01")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and rows
    assert all(r["name"] is None for r in rows)  # tolerance 0.01: nothing is that close
    row = max(rows, key=lambda r: r["similarity"])
    assert row["candidates"][0]["name"] == "Eileen Collins" and row["candidates"][0]["similarity"] > 0.9


def test_nothing_to_identify_is_a_one_line_error(tmp_path, capsys):
    code, _, err = _run(capsys, tmp_path / "missing", "--enrol-from", tmp_path / "nobody")
    assert code == 2 and err.strip().splitlines()[-1].startswith("facestream: error: --enrol-from")


@pytest.mark.needs_data
@pytest.mark.skipif(not LFW.is_dir(), reason=f"LFW subset not found at {LFW} (../shared/data is absent)")
def test_lfw_folder_of_enrolled_people_is_identified(tmp_path, capsys):
    from ..helpers import lfw_split

    known, probes, truth = tmp_path / "known", tmp_path / "probes", {}
    probes.mkdir()
    for name, photo, others in lfw_split(LFW):
        (known / name).mkdir(parents=True)
        shutil.copy(photo, known / name / photo.name)
        for other in others:
            shutil.copy(other, probes / other.name)
            truth[other.name] = name
    assert len(truth) >= 80
    code, out, err = _run(capsys, probes, "--enrol-from", known)
    assert code == 0, err
    named: dict[str, set] = {}
    for r in csv.DictReader(io.StringIO(out)):
        named.setdefault(Path(r["file"]).name, set()).add(r["name"])
    wrong = {f: n for f, names in named.items() for n in names if n not in ("unknown", truth[f])}
    right = sum(1 for f, person in truth.items() if person in named.get(f, set()))
    assert not wrong, wrong
    assert right >= 0.98 * len(truth), f"{right}/{len(truth)} identified"


def test_a_face_under_40_px_in_a_thumbnail_is_named(tmp_path, capsys):
    """The astronaut enrolled from a crop of the full image, then a 300x400 thumbnail holding her face at
    23 px: HOG upsampled once finds nothing there, the photo is searched again at 4x and the face named."""
    from skimage.data import astronaut

    rgb = astronaut()
    known, probes = tmp_path / "known" / "eileen", tmp_path / "probes"
    known.mkdir(parents=True)
    probes.mkdir()
    cv2.imwrite(str(known / "crop.png"), cv2.cvtColor(rgb[20:260, 110:340], cv2.COLOR_RGB2BGR))
    thumb = np.full((300, 400, 3), 127, np.uint8)
    thumb[100:228, 150:278] = cv2.resize(rgb, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(probes / "thumb.png"), cv2.cvtColor(thumb, cv2.COLOR_RGB2BGR))
    code, out, err = _run(capsys, probes, "--enrol-from", tmp_path / "known")
    assert code == 0, err
    (row,) = list(csv.DictReader(io.StringIO(out)))
    assert row["name"] == "eileen" and float(row["x2"]) - float(row["x1"]) < 32, row
