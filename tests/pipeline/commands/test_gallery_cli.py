"""``facestream gallery`` on real photos (LFW subset, facenet-pytorch's group photo)."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from facestream.pipeline.cli import main

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
LFW = DATA / "lfw_subset_10x10"
GROUP = DATA / "facenet_pytorch_assets" / "data" / "multiface.jpg"

pytestmark = [
    pytest.mark.needs_data,
    pytest.mark.skipif(not LFW.is_dir(), reason=f"real face data not found at {LFW}"),
]


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    pytest.importorskip(
        "facestream.engines.faces.analyzer", reason="facestream.engines.faces (the face API) is not in this checkout"
    )
    monkeypatch.setenv("FACESTREAM_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("FACESTREAM_GALLERY", str(tmp_path / "gallery.db"))
    monkeypatch.delenv("FACESTREAM_GALLERY_KEY", raising=False)


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["gallery", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_add_list_and_refusals_with_reasons(tmp_path, capsys):
    blair = sorted((LFW / "Tony_Blair").iterdir())
    code, out, err = cli(capsys, "add", "Tony Blair", blair[0], blair[1])
    assert code == 0 and "2 photo(s) enrolled" in out, err
    code, out, _ = cli(capsys, "add", "Tony Blair", blair[0])  # same photo again: nothing new
    assert code == 0 and "0 photo(s) enrolled, 2 in the gallery" in out

    not_image = tmp_path / "notes.jpg"
    not_image.write_text("not a picture")
    blurred = tmp_path / "blurred.jpg"
    cv2.imwrite(str(blurred), cv2.GaussianBlur(cv2.imread(str(blair[2])), (0, 0), 6))
    tiny = tmp_path / "tiny.jpg"
    cv2.imwrite(str(tiny), cv2.resize(cv2.imread(str(blair[3])), (90, 90)))
    photos = [not_image, blurred, tiny] + ([GROUP] if GROUP.is_file() else [])
    code, out, err = cli(capsys, "add", "Someone", *photos)
    assert code == 2 and "no usable photo of Someone" in err
    lines = [ln for ln in err.splitlines() if ln.startswith("refused:")]
    assert len(lines) == len(photos)
    assert "not an image" in lines[0]
    assert "blurred" in lines[1] or "no face found" in lines[1]
    assert "too small" in lines[2] or "no face found" in lines[2]
    if GROUP.is_file():
        assert "faces in the photo" in lines[3]
    code, out, _ = cli(capsys, "list")
    assert "1 people" in out and "Tony Blair: 2 embedding(s)" in out


def test_rename_export_import_reject_forget(tmp_path, capsys):
    bush = sorted((LFW / "George_W_Bush").iterdir())
    assert cli(capsys, "add", "GWB", bush[0])[0] == 0
    assert cli(capsys, "rename", "GWB", "George W Bush")[0] == 0
    export = tmp_path / "export.json"
    assert cli(capsys, "export", export)[0] == 0
    other = tmp_path / "other.db"
    code, out, _ = cli(capsys, "import", export, "--gallery", other)
    assert code == 0 and "imported 1 new people and 1 embeddings" in out
    code, out, _ = cli(capsys, "reject", "e-0123456789abcdef", "George W Bush")
    assert code == 0 and "only that track/event is blocked" in out
    code, _, err = cli(capsys, "reject", "e-1", "Nobody")
    assert code == 2 and "no person named 'Nobody'" in err and err.count("\n") == 1
    assert cli(capsys, "forget", "George W Bush")[0] == 0
    assert "0 people" in cli(capsys, "list")[1]
    assert "1 people" in cli(capsys, "list", "--gallery", other)[1]


def test_unknowns_and_name_unknown(capsys):
    from facestream.pipeline.recognition.gallery import Gallery
    from facestream.pipeline.recognition.unknowns import UnknownClusters

    g = Gallery()
    c = UnknownClusters(g).assign(np.ones(128, np.float32), 0.8, ts_ns=1)
    g.close()
    code, out, _ = cli(capsys, "unknowns")
    assert code == 0 and f"unknown#{c.unknown_id}: seen 1 time(s)" in out
    code, out, _ = cli(capsys, "name-unknown", f"unknown#{c.unknown_id}", "Visitor")
    assert code == 0 and "is now Visitor (1 embedding(s) added)" in out
    assert "Visitor: 1 embedding(s)" in cli(capsys, "list")[1]
    code, _, err = cli(capsys, "name-unknown", "bob", "X")
    assert code == 2 and "not an unknown id" in err
