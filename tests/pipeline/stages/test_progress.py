"""The sink's progress lines: per stream, at most one per interval, totals for files, a status for live sources."""

from __future__ import annotations

import io

from facestream.pipeline.records import FaceRecord, ItemMeta
from facestream.pipeline.stages.progress import ProgressReporter


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _face(identity: str | None) -> FaceRecord:
    return FaceRecord((0, 0, 50, 50), 1.0, 0.8, identity=identity)


def test_a_file_gets_a_progress_line_per_interval_and_one_at_its_end():
    out, clock = io.StringIO(), Clock()
    rep = ProgressReporter(1.0, out, clock)
    for i in range(100):  # 100 frames at 32 fps: 3.1 s
        faces = [_face("Alice")] if i < 60 else [_face("unknown#3"), _face("Bob")]
        clock.t = 100.0 + i / 32
        rep.result("video", ItemMeta(policy="lossless", frames_expected=100, faces=faces))
    rep.ended("video")
    lines = out.getvalue().splitlines()
    assert len(lines) == 4, lines  # at 1, 2 and 3 s, and the end
    assert lines[0] == "facestream: video 33/100 frames (33%), 32.0 fps, 33 faces, 1 identity: Alice"
    assert lines[-1] == "facestream: video 100/100 frames (100%), 32.0 fps, 140 faces, 2 identities: Alice, Bob, done"


def test_a_live_source_gets_a_status_line_every_few_intervals_per_stream():
    out, clock = io.StringIO(), Clock()
    rep = ProgressReporter(1.0, out, clock)
    for i in range(200):  # 25 s at 8 fps on two cameras
        clock.t = 100.0 + i / 8
        for cam in ("door", "yard"):
            rep.result(cam, ItemMeta(policy="latest", faces=[]))
    lines = out.getvalue().splitlines()
    assert [ln.split()[1] for ln in lines] == ["door", "yard"] * 4, lines  # every 5 s each
    assert lines[0] == "facestream: door live, 41 frames, 8.0 fps, 0 faces, 0 identities"
