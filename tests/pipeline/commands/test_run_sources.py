"""`facestream run SOURCE ...`: sources from the command line, a .yaml argument as the config, one-line errors."""

from __future__ import annotations

import argparse

import pytest
import yaml

from facestream.errors import FacestreamError
from facestream.pipeline.cli import main
from facestream.pipeline.commands import run
from facestream.pipeline.commands.run_sources import source_entries


def _load(argv: list[str]):
    parser = argparse.ArgumentParser()
    run.register(parser.add_subparsers())
    return run._load(parser.parse_args(["run", *argv]))


def test_every_kind_of_source_is_its_own_stream_with_an_id_from_its_name(tmp_path):
    video = tmp_path / "street.mp4"
    video.write_bytes(b"")
    other = tmp_path / "b" / "street.mp4"
    other.parent.mkdir()
    other.write_bytes(b"")
    photos = tmp_path / "holiday photos"
    photos.mkdir()
    entries = source_entries([str(video), str(other), str(photos), "rtsp://admin:secret@10.0.0.5:554/stream1",
                              "https://cam.example/live.mjpg?token=abc", "webcam:1", "demo"])
    assert [e["id"] for e in entries] == ["street", "street-2", "holiday_photos", "10.0.0.5-stream1",
                                          "cam.example-live.mjpg", "webcam-1", "demo"]
    assert not any("secret" in e["id"] or "abc" in e["id"] for e in entries)


def test_sources_replace_the_config_and_a_yaml_argument_is_the_config(tmp_path):
    config = tmp_path / "site.yaml"
    config.write_text(yaml.safe_dump({"sources": [{"id": "cam", "uri": "webcam:0"}],
                                      "sink": {"out_dir": str(tmp_path / "o")}}))
    photos = tmp_path / "photos"
    photos.mkdir()
    cfg = _load([str(config)])  # `facestream run site.yaml` keeps working
    assert [s.id for s in cfg.sources] == ["cam"] and cfg.sink.out_dir == str(tmp_path / "o")
    for argv in (["--config", str(config), str(photos)], [str(photos), str(config)]):
        cfg = _load(argv)
        assert [(s.id, s.kind, s.stills) for s in cfg.sources] == [("photos", "directory", True)]
        assert cfg.sink.out_dir == str(tmp_path / "o") and cfg.sink.stdout is False
    assert _load([str(photos), "--stdout", "json"]).sink.stdout is True
    assert _load([]).sink.stdout is False  # the demo too: progress on the terminal, results in files
    assert _load([]).is_demo()


def test_a_missing_source_is_one_line_before_anything_starts(tmp_path, capsys):
    code = main(["run", str(tmp_path / "nothere.mp4"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "nothere.mp4: no such file or folder" in err[0], err
    assert not (tmp_path / "out").exists()
    with pytest.raises(FacestreamError, match="two config files"):
        _load([str(tmp_path / "a.yaml"), str(tmp_path / "b.yml")])
    with pytest.raises(FacestreamError, match="both as arguments and with --set"):
        _load(["demo", "--set", "sources=[{id: a, uri: demo}]"])
