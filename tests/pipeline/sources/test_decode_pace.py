"""Skipping non-reference frames while the pipeline uses few of a live source's frames (decode_pace.py)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from facestream.pipeline.sources.config import SourceConfig
from facestream.pipeline.sources.decode_pace import DecodePace
from facestream.pipeline.sources.live import LiveSource
from facestream.pipeline.sources.pyav_capture import PyAVCapture, pyav_available


def test_pace_skips_when_few_frames_are_used_and_decodes_all_again_when_most_of_the_rest_are():
    pace = DecodePace(window=50)
    assert not pace.update(10, 30), "no decision before a window of frames is accounted for"
    assert pace.update(0, 10) and pace.skip, "10 of 50 used: skip"
    assert not pace.update(25, 25) and pace.skip, "half of the halved stream used: keep skipping"
    assert pace.update(45, 5) and not pace.skip, "nearly all of the halved stream used: decode every frame"
    assert not pace.update(25, 25) and not pace.skip, "half of the full stream used: no need to skip"


def bframe_clip(path: Path, seconds: int = 4) -> Path:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed (Debian: apt install ffmpeg)")
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
                    "-t", str(seconds), "-c:v", "libx264", "-g", "25", "-bf", "3", "-pix_fmt", "yuv420p", str(path)],
                   check=True)
    return path


@pytest.mark.skipif(not pyav_available(), reason="PyAV not installed")
def test_a_pyav_capture_skips_non_reference_frames_only_while_asked(tmp_path):
    clip = bframe_clip(tmp_path / "b.mp4")
    skipped = []
    cap = PyAVCapture(str(clip), {}, 5.0, 5.0, on_skipped=skipped.append)
    assert cap.isOpened()
    decoded = 0
    while decoded < 25:  # the first second: every frame
        ok, img = cap.read()
        assert ok and img.shape == (240, 320, 3)
        decoded += 1
    cap.skip_nonref = lambda: True
    rest = 0
    while True:
        ok, img = cap.read()
        if not ok:
            break
        assert img.shape == (240, 320, 3)
        rest += 1
    cap.release()
    assert 0.3 * 75 < rest < 0.7 * 75, f"with B-frames about half of the last 75 frames are non-reference: {rest}"
    assert sum(skipped) >= 75 - rest - 4, "the skipped frames are counted"


def test_a_lossless_live_source_never_skips_frames():
    lossless = LiveSource(SourceConfig(id="door", uri="rtsp://127.0.0.1:1/x", policy="lossless"))
    lossless.skip_nonref(True)
    assert not lossless.skipping
    latest = LiveSource(SourceConfig(id="hall", uri="rtsp://127.0.0.1:1/x"))
    latest.skip_nonref(True)
    assert latest.skipping
    latest.skip_nonref(False)
    assert not latest.skipping
