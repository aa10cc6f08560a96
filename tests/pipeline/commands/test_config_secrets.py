"""`facestream config` prints source URIs with their credentials masked unless --show-secrets (#13)."""

from __future__ import annotations

import yaml

from facestream.pipeline.cli import main

CAMERA = "rtsp://admin:hunter2secret@10.0.0.7:554/stream1?token=abcdef123"


def _config(tmp_path) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"sources": [{"id": "door", "uri": CAMERA}]}))
    return str(path)


def test_config_masks_camera_credentials(tmp_path, capsys):
    assert main(["config", _config(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "hunter2secret" not in out and "abcdef123" not in out and "admin" not in out
    uri = yaml.safe_load(out)["sources"][0]["uri"]
    assert uri.startswith("rtsp://***@10.0.0.7:554/stream1") and "token=***" in uri


def test_config_show_secrets_prints_the_uri_as_given(tmp_path, capsys):
    assert main(["config", _config(tmp_path), "--show-secrets"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["sources"][0]["uri"] == CAMERA


def test_a_config_error_quoting_a_camera_uri_masks_its_credentials(tmp_path, capsys):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"sources": [CAMERA]}))  # a bare string where a source map belongs
    assert main(["config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "config error" in err and "sources[0]" in err and "rtsp://***@10.0.0.7:554/stream1" in err
    assert "hunter2secret" not in err and "abcdef123" not in err


def test_an_unusable_source_argument_is_named_without_its_password(capsys):
    assert main(["run", "rtsp:/admin:hunter2secret@10.0.0.7/stream1"]) == 2  # one slash: not a URL, not a file
    err = capsys.readouterr().err
    assert "no such file or folder" in err and "hunter2secret" not in err and "rtsp:/***@10.0.0.7" in err
