"""Training data in any image format Pillow reads (GIF, TIFF, BMP, PGM, WEBP), grey or colour."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facestream.engines.training.data import load_image_folder
from facestream.errors import FacestreamError

ORL = Path(__file__).resolve().parents[4] / "shared" / "data" / "orl_att_faces"


@pytest.mark.parametrize("ext", [".gif", ".tif", ".tiff", ".bmp", ".pgm", ".webp"])
@pytest.mark.parametrize("colour", [False, True])
def test_every_format_reads_like_png(make_image_folder, tmp_path, ext, colour):
    if colour and ext == ".pgm":
        ext = ".ppm"  # PGM is grey by definition; its colour sibling is PPM
    png = load_image_folder(make_image_folder(tmp_path / "png", colour=colour))
    other = load_image_folder(make_image_folder(tmp_path / ext.lstrip("."), ext=ext, colour=colour))
    assert other.classes == png.classes and other.labels.tolist() == png.labels.tolist()
    assert {f.suffix for f in other.files} == {ext}
    tolerance = 0.05 if ext == ".webp" else 2 / 255  # WEBP is lossy by default; the rest are lossless
    assert np.abs(other.images - png.images).mean() < tolerance


def test_person_folders_of_unknown_files_say_what_they_hold(tmp_path):
    for person in ("a", "b"):
        (tmp_path / person).mkdir()
        (tmp_path / person / f"subject_{person}.centerlight").write_bytes(b"GIF89a")
    with pytest.raises(FacestreamError) as info:
        load_image_folder(tmp_path)
    assert "no person folders with images" in str(info.value) and "'subject_a.centerlight'" in str(info.value)


def _orl_as_gif(root: Path, people: int = 5) -> Path:
    from PIL import Image

    for person in sorted((p for p in ORL.iterdir() if p.is_dir()), key=lambda p: int(p.name[1:]))[:people]:
        (root / person.name).mkdir(parents=True)
        for f in person.glob("*.pgm"):
            with Image.open(f) as im:
                im.save(root / person.name / f"{f.stem}.gif")
    return root


@pytest.mark.needs_data
def test_orl_converted_to_gif_reads_as_the_pgm_and_trains(tmp_path, capsys):
    if not ORL.is_dir():
        pytest.skip(f"ORL faces not present at {ORL} (shared data is not in this checkout)")
    pytest.importorskip("torch")
    from facestream.pipeline.cli import main

    gif = _orl_as_gif(tmp_path / "orl_gif")
    ds = load_image_folder(gif)
    pgm = load_image_folder(ORL)
    keep = np.isin(pgm.labels, [pgm.classes.index(c) for c in ds.classes])
    np.testing.assert_array_equal(ds.images, pgm.images[keep])  # GIF of 8-bit grey is lossless

    run = tmp_path / "run"
    args = ["--data", str(gif), "--split", "orl"]
    fixed = ["--epochs", "10", "--batch-size", "8", "--val-split", "0", "--augment", "none"]
    assert main(["train", "--arch", "seed-attention", *args, *fixed, "--out", str(run)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["test_accuracy"] > 0.6  # 5 people, 10 epochs (0.88 measured): far above chance (0.2)
    assert main(["eval", "--model", str(run), *args, "--out", str(tmp_path / "eval")]) == 0
    assert json.loads((tmp_path / "eval" / "report.json").read_text())["samples"] == 25
