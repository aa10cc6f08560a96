"""Directory source: sorted images, non-images skipped with a counter, size changes noticed."""

from __future__ import annotations

import cv2
import pytest
from helpers import metric, numbered_frame, unique_id

from facestream.errors import FacestreamError
from facestream.pipeline.sources import SourceConfig, open_source
from facestream.pipeline.sources.directory import DirectorySource


def test_sorted_images_and_non_images_skipped(tmp_path, caplog):
    for i in (3, 1, 2):
        cv2.imwrite(str(tmp_path / f"img_{i:03d}.png"), numbered_frame(i * 10))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (tmp_path / "subdir").mkdir()
    sid = unique_id("dir")
    source = open_source(SourceConfig(id=sid, uri=str(tmp_path)))
    assert isinstance(source, DirectorySource)
    frames = list(source.frames())
    assert [f.index for f in frames] == [0, 1, 2]
    # PNG is lossless: brightness says which file each frame came from, in name order.
    assert [int(f.image[2, 2, 0]) for f in frames] == [(i * 70) % 200 + 20 for i in (1, 2, 3)]
    assert metric("facestream_source_skipped_files_total", sid) == 2
    assert any("not a readable image" in r.getMessage() for r in caplog.records)


def test_resolution_change_is_logged_and_counted(tmp_path, caplog):
    cv2.imwrite(str(tmp_path / "a.png"), numbered_frame(1, 160, 120))
    cv2.imwrite(str(tmp_path / "b.png"), numbered_frame(2, 160, 120))
    cv2.imwrite(str(tmp_path / "c.png"), numbered_frame(3, 320, 240))
    cv2.imwrite(str(tmp_path / "d.png"), numbered_frame(4, 320, 240))
    sid = unique_id("dir-res")
    frames = list(open_source(SourceConfig(id=sid, uri=str(tmp_path))).frames())
    assert [f.image.shape[:2] for f in frames] == [(120, 160)] * 2 + [(240, 320)] * 2
    assert metric("facestream_source_resolution_changes_total", sid) == 1
    assert any("resolution changed from 160x120 to 320x240" in r.getMessage() for r in caplog.records)


def test_grey_and_alpha_images_become_bgr(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), numbered_frame(1)[:, :, 0])
    cv2.imwrite(str(tmp_path / "b.png"), cv2.cvtColor(numbered_frame(2), cv2.COLOR_BGR2BGRA))
    frames = list(open_source(SourceConfig(id=unique_id("dir-grey"), uri=str(tmp_path))).frames())
    assert [f.image.shape for f in frames] == [(120, 160, 3)] * 2


def test_empty_directory_ends_and_missing_directory_is_user_error(tmp_path):
    assert list(open_source(SourceConfig(id="e", uri=str(tmp_path), kind="directory", loop=True)).frames()) == []
    with pytest.raises(FacestreamError, match="directory not found"):
        open_source(SourceConfig(id="e", uri=str(tmp_path / "missing"), kind="directory"))
