"""SourceConfig: kinds detected from the uri, policy defaults, bad values refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from facestream.pipeline.sources import SourceConfig


@pytest.mark.parametrize(
    ("uri", "kind", "policy"),
    [
        ("demo", "demo", "lossless"),
        ("webcam:2", "webcam", "latest"),
        ("0", "webcam", "latest"),
        ("rtsp://cam.local:554/stream1", "rtsp", "latest"),
        ("https://cam.local/mjpeg", "http", "latest"),
        ("/videos/clip.mp4", "file", "lossless"),
    ],
)
def test_kind_and_policy_from_uri(uri, kind, policy):
    cfg = SourceConfig(id="s", uri=uri)
    assert (cfg.kind, cfg.policy) == (kind, policy)
    assert cfg.live == (kind in {"webcam", "rtsp", "http"})


def test_directory_and_integer_uri(tmp_path):
    assert SourceConfig(uri=str(tmp_path)).kind == "directory"
    assert SourceConfig(uri=1).uri == "webcam:1"


def test_explicit_policy_wins():
    assert SourceConfig(uri="rtsp://x/y", policy="lossless").policy == "lossless"


@pytest.mark.parametrize(
    "bad",
    [
        {"policy": "newest"},
        {"rtsp_transport": "http"},
        {"read_timeout_s": 0},
        {"reconnect_min_s": 5, "reconnect_max_s": 1},
        {"reconnect_jitter": 2},
        {"resize": {}},
        {"id": "has space"},
        {"uri": "webcam:x", "kind": "webcam"},
        {"unknown_key": 1},
        {"ffmpeg_options": {"probesize": "1|rtsp_transport;udp"}},
    ],
)
def test_bad_values_are_refused(bad):
    with pytest.raises(ValidationError):
        SourceConfig(**bad)


def test_ffmpeg_options_reach_the_capture_options_string():
    from facestream.pipeline.sources.capture_open import ffmpeg_options

    cfg = SourceConfig(uri="rtsp://cam/x", rtsp_transport="udp", ffmpeg_options={"analyzeduration": 500000})
    assert ffmpeg_options(cfg).split("|")[-2:] == ["rtsp_transport;udp", "analyzeduration;500000"]
