"""A track that ends before it is confirmed is still decided, from its best shot (synthetic faces)."""

import numpy as np
import pytest

from facestream.pipeline.recognition.batch import recognise_frames
from facestream.pipeline.recognition.events import EventKind
from facestream.pipeline.recognition.gallery import EnrolItem, Gallery
from facestream.pipeline.recognition.stream_recognizer import RecognizerConfig, StreamRecognizer

from .test_stream_recognizer import CENTRES, FRAME_NS, embed, face


@pytest.fixture
def gallery(gallery_at):  # gallery_at: the SQLite file, then a PostgreSQL database (conftest.py)
    g = Gallery(gallery_at)
    g.enrol("Alice", [EnrolItem(CENTRES[0], 0.9, "alice-1")])
    yield g
    g.close()


def _run(rec, frames, stream="cam"):
    events, calls = [], []

    def counting(chips):
        calls.append(len(chips))
        return embed(chips)

    for f, faces in enumerate(frames):
        for r in recognise_frames(rec, [(stream, f, f * FRAME_NS, faces)], counting):
            events += r.events
    return events, sum(calls)


def test_a_two_frame_sighting_is_named_when_it_ends(gallery):
    rec = StreamRecognizer(gallery, config=RecognizerConfig(threshold=0.9))  # n_init 3: never confirmed
    # Alice in two frames (the better shot second), then nobody.
    events, embedded = _run(rec, [[face(0, 200, quality=0.4)], [face(0, 204, quality=0.9)], [], []])
    assert [(e.kind, e.identity) for e in events] == [
        (EventKind.STARTED, None), (EventKind.IDENTIFIED, "Alice"), (EventKind.ENDED, "Alice")]
    started, identified, ended = events
    assert started.seq == 0 and identified.seq == ended.seq == 2  # decided where it ended, in that batch
    assert identified.score > 0.9 and embedded == 1  # one embedding: the best shot only
    assert ended.dwell_seconds == pytest.approx(FRAME_NS / 1e9)
    assert gallery.db.execute("SELECT COUNT(*) FROM sightings").fetchone()[0] == 1


def test_a_short_track_still_open_at_end_of_stream_is_decided_there(gallery):
    rec = StreamRecognizer(gallery, config=RecognizerConfig(threshold=0.9))
    for stream in ("cam-a", "cam-b"):
        events, embedded = _run(rec, [[face(0, 200)]], stream)  # one frame, then the stream ends
        assert events == [] and embedded == 0
    assert rec.end_stream("cam-a", 1, FRAME_NS) == []  # without an embedder: dropped, as before
    ended = rec.end_stream("cam-b", 1, FRAME_NS, embed)
    assert [(e.kind, e.identity) for e in ended] == [
        (EventKind.STARTED, None), (EventKind.IDENTIFIED, "Alice"), (EventKind.ENDED, "Alice")]
    assert not rec._shots and not rec._memory


def test_a_poor_short_unknown_is_flicker_and_a_good_one_gets_an_anonymous_id(gallery):
    rec = StreamRecognizer(gallery, config=RecognizerConfig(threshold=0.9, unknown_min_quality=0.3))
    events, _ = _run(rec, [[face(1, 200, quality=0.1)], [], [face(2, 400, quality=0.8)], []])
    kinds = [(e.kind, e.identity) for e in events]
    assert len(kinds) == 3 and kinds[1][0] == EventKind.IDENTIFIED and kinds[1][1].startswith("unknown#")
    assert {e.track_id for e in events} == {events[0].track_id}  # only the good view is reported


def test_confirmed_tracks_are_not_decided_twice(gallery):
    rec = StreamRecognizer(gallery, config=RecognizerConfig(threshold=0.9))
    events, embedded = _run(rec, [[face(0, 200 + 2 * f)] for f in range(6)] + [[]] * 20)
    assert [e.kind for e in events] == [EventKind.STARTED, EventKind.IDENTIFIED, EventKind.ENDED]
    assert embedded == 1 and not rec._shots
    assert np.isfinite(events[1].score)
