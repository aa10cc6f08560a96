"""Video file source: every frame of a real mp4, truncated files end cleanly and are counted."""

from __future__ import annotations

import random

import pytest
from helpers import metric, unique_id, write_video

from facestream.errors import FacestreamError
from facestream.pipeline.sources import SourceConfig, open_source
from facestream.pipeline.sources.file import FileSource


def test_reads_every_frame_in_order(tmp_path):
    video = write_video(tmp_path / "clip.mp4", 40)
    sid = unique_id("file")
    source = open_source(SourceConfig(id=sid, uri=str(video)))
    assert isinstance(source, FileSource) and not source.live
    frames = list(source.frames())
    assert [f.index for f in frames] == list(range(40))
    assert all(f.image.shape == (120, 160, 3) and f.image.dtype.name == "uint8" for f in frames)
    # Brightness encodes the frame number: frames come out in file order.
    means = [float(f.image[5:15, 100:150].mean()) for f in frames]
    assert means[:5] == pytest.approx([20, 27, 34, 41, 48], abs=4)
    assert all(b.mono_ns >= a.mono_ns for a, b in zip(frames, frames[1:], strict=False))
    assert metric("facestream_source_frames_total", sid) == 40
    assert metric("facestream_source_decode_errors_total", sid) == 0


def test_loop_keeps_counting_and_max_frames_stops(tmp_path):
    video = write_video(tmp_path / "clip.mp4", 10)
    source = open_source(SourceConfig(id=unique_id("loop"), uri=str(video), loop=True, max_frames=25))
    assert [f.index for f in source.frames()] == list(range(25))


def test_resize_keeps_aspect_when_one_side_given(tmp_path):
    video = write_video(tmp_path / "clip.mp4", 3)
    source = open_source(SourceConfig(id=unique_id("resize"), uri=str(video), resize={"width": 80}))
    assert {f.image.shape for f in source.frames()} == {(60, 80, 3)}


def test_truncated_mp4_ends_cleanly_and_is_counted(tmp_path, caplog):
    video = write_video(tmp_path / "clip.mp4", 40)
    data = video.read_bytes()
    video.write_bytes(data[: len(data) // 2])  # mp4v writes its index (moov) last: it is gone
    sid = unique_id("trunc")
    frames = list(open_source(SourceConfig(id=sid, uri=str(video))).frames())
    assert frames == []
    assert metric("facestream_source_decode_errors_total", sid) == 1
    assert any("cannot decode" in r.getMessage() for r in caplog.records)


def test_truncated_avi_yields_what_is_there_then_ends(tmp_path, caplog):
    video = write_video(tmp_path / "clip.avi", 60, fourcc="MJPG")
    data = video.read_bytes()
    video.write_bytes(data[: len(data) // 2])
    sid = unique_id("trunc-avi")
    frames = list(open_source(SourceConfig(id=sid, uri=str(video))).frames())
    assert 10 < len(frames) < 60
    assert [f.index for f in frames] == list(range(len(frames)))
    assert metric("facestream_source_decode_errors_total", sid) == 1
    assert any("truncated or corrupt" in r.getMessage() for r in caplog.records)


def test_garbage_file_is_a_decode_error(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x01not a video" * 1000)
    sid = unique_id("junk")
    assert list(open_source(SourceConfig(id=sid, uri=str(junk))).frames()) == []
    assert metric("facestream_source_decode_errors_total", sid) == 1


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(FacestreamError, match="not found"):
        open_source(SourceConfig(id="x", uri=str(tmp_path / "nope.mp4")))


def test_close_from_another_thread_stops_frames(tmp_path):
    video = write_video(tmp_path / "clip.mp4", 50)
    source = open_source(SourceConfig(id=unique_id("close"), uri=str(video), max_fps=1000))
    got = []
    for frame in source.frames():
        got.append(frame.index)
        if frame.index == 4:
            source.close()
    assert got == [0, 1, 2, 3, 4]


def test_corrupt_frames_are_skipped_and_counted(tmp_path):
    video = write_video(tmp_path / "clip.mp4", 60)
    data = bytearray(video.read_bytes())
    rng = random.Random(1)
    for _ in range(200):  # scribble over the frame data, leaving the header and the index intact
        data[rng.randrange(2000, len(data) - 3000)] = rng.randrange(256)
    video.write_bytes(bytes(data))
    sid = unique_id("corrupt")
    frames = list(open_source(SourceConfig(id=sid, uri=str(video))).frames())
    errors = metric("facestream_source_decode_errors_total", sid)
    assert errors >= 1
    assert 30 < len(frames) <= 60 - errors + 1
    assert [f.index for f in frames] == list(range(len(frames)))
