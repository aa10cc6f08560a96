"""facestream.fsutil: atomic replacement, private files, nothing left behind on failure."""

import os

import pytest

from facestream.fsutil import atomic_open, atomic_write, create_private, is_image_file


def test_atomic_write_replaces_whole_and_follows_the_umask(tmp_path):
    target = tmp_path / "summary.json"
    target.write_text("old")
    old = os.umask(0o027)
    try:
        atomic_write(target, "new ✓")
    finally:
        os.umask(old)
    assert target.read_text() == "new ✓"
    assert oct(target.stat().st_mode & 0o777) == "0o640"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_private_files_are_0600_from_the_start(tmp_path):
    atomic_write(tmp_path / "secret", b"k", private=True, fsync=True)
    assert oct((tmp_path / "secret").stat().st_mode & 0o777) == "0o600"
    assert create_private(tmp_path / "db") is True
    assert create_private(tmp_path / "db") is False  # an existing file is left alone
    assert oct((tmp_path / "db").stat().st_mode & 0o777) == "0o600"


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "model.pt"
    target.write_bytes(b"good")
    with pytest.raises(RuntimeError), atomic_open(target) as f:
        f.write(b"half")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_image_suffixes_ignore_case(tmp_path):
    assert is_image_file(tmp_path / "a.JPG") and is_image_file(tmp_path / "b.pgm")
    assert not is_image_file(tmp_path / "notes.txt")
