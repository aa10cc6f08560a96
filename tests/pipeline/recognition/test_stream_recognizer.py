"""StreamRecognizer end to end on synthetic streams: two people walk through two cameras."""

from dataclasses import dataclass

import numpy as np
import pytest

from facestream.pipeline.recognition.batch import recognise_frames
from facestream.pipeline.recognition.events import EventKind
from facestream.pipeline.recognition.gallery import EnrolItem, Gallery
from facestream.pipeline.recognition.scheduler import SchedulerConfig
from facestream.pipeline.recognition.stream_recognizer import RecognizerConfig, StreamRecognizer

RNG = np.random.default_rng(0)
CENTRES = {i: v / np.linalg.norm(v) for i, v in enumerate(RNG.normal(size=(3, 128)))}
FRAME_NS = 40_000_000


@dataclass
class FakeFace:
    """A detector output: box, quality, and a chip whose pixels say who it is (for the fake embedder)."""

    box: np.ndarray
    quality: float
    chip: np.ndarray


def face(person: int, cx: float, quality: float = 0.8) -> FakeFace:
    chip = np.full((150, 150, 3), person, np.uint8)
    return FakeFace(np.array([cx - 40, 100, cx + 40, 180.0]), quality, chip)


def embed(chips: np.ndarray) -> np.ndarray:
    """Fake embedder: identity centre + small noise that depends on the call (deterministic)."""
    out = []
    for c in chips:
        person = int(c[0, 0, 0])
        noise = np.random.default_rng(int(c.sum()) % 1000 + len(chips)).normal(size=128) * 0.02
        v = CENTRES[person] + noise
        out.append(v / np.linalg.norm(v))
    return np.array(out, np.float32)


def scene(frames: int = 60):
    """cam-a: person 0 walks right, person 1 walks left (they cross); cam-b: person 1 alone, leaves at 40."""
    for f in range(frames):
        ts = 1_000_000_000 + f * FRAME_NS
        yield [
            ("cam-a", f, ts, [face(0, 100 + 6 * f), face(1, 460 - 6 * f)]),
            ("cam-b", f, ts, [face(1, 300)] if f < 40 else []),
        ]


@pytest.fixture
def gallery(gallery_at):  # gallery_at: the SQLite file, then a PostgreSQL database (conftest.py)
    g = Gallery(gallery_at)
    g.enrol("Alice", [EnrolItem(CENTRES[0], 0.9, "alice-1")])
    yield g
    g.close()


def run(gallery, crop_dir, frames=60):
    rec = StreamRecognizer(
        gallery,
        config=RecognizerConfig(threshold=0.9, max_age=5, scheduler=SchedulerConfig(max_interval_s=1.0)),
        crop_dir=crop_dir,
    )
    results = []
    for batch in scene(frames):
        results += recognise_frames(rec, batch, embed)
    return rec, results


def test_tracks_are_identified_once_and_batched(gallery, tmp_path):
    rec, results = run(gallery, tmp_path / "crops")
    events = [e for r in results for e in r.events]
    by_track = {}
    for e in events:
        by_track.setdefault((e.stream_id, e.track_id), []).append(e)
    assert len(by_track) == 3
    kinds = {k: [e.kind for e in v] for k, v in by_track.items()}
    for k, seq in kinds.items():
        assert seq[:2] == [EventKind.STARTED, EventKind.IDENTIFIED], (k, seq)
        assert EventKind.IDENTITY_CHANGED not in seq  # no flicker
    identified = {k: v[1] for k, v in by_track.items()}
    names = sorted(e.identity for e in identified.values())
    assert names[0] == "Alice"
    # person 1 seen by both cameras gets one persistent anonymous id
    assert names[1] == names[2] and names[1].startswith("unknown#")
    alice = next(e for e in identified.values() if e.name == "Alice")
    assert alice.score > 0.9 and alice.best_shot_path and (tmp_path / "crops").exists()
    ended = [e for e in events if e.kind == EventKind.ENDED]
    assert [(e.stream_id, e.identity) for e in ended] == [("cam-b", names[1])]
    assert ended[0].dwell_seconds == pytest.approx(39 * FRAME_NS / 1e9)
    faces_seen = sum(len(r.tracks) for r in results)
    embedded = sum(t.embedded for r in results for t in r.tracks)
    assert faces_seen == 60 * 2 + 40 and embedded < faces_seen / 10
    last = [r for r in results if r.stream_id == "cam-a"][-1]
    assert [t.identity for t in last.tracks][0] == "Alice"
    assert gallery.db.execute("SELECT COUNT(*) FROM sightings").fetchone()[0] == 3


def test_replay_gives_the_same_event_ids(gallery, tmp_path):
    _, first = run(gallery, None)
    second_gallery = Gallery(tmp_path / "g2.db")
    second_gallery.enrol("Alice", [EnrolItem(CENTRES[0], 0.9, "alice-1")])
    _, second = run(second_gallery, None)
    ids = lambda rs: [(e.event_id, e.kind, e.identity) for r in rs for e in r.events]  # noqa: E731
    assert ids(first) == ids(second) and len(ids(first)) == 7


def live_reloading_recognizer(gallery: Gallery) -> StreamRecognizer:
    """Re-reads the gallery on every frame and re-embeds every 0.2 s, so operator changes show at once."""
    config = RecognizerConfig(threshold=0.9, reload_interval_s=0.0, scheduler=SchedulerConfig(max_interval_s=0.2))
    return StreamRecognizer(gallery, config=config)


def test_gallery_change_reaches_a_running_recognizer(gallery, gallery_at):
    rec = live_reloading_recognizer(gallery)
    events = []
    for f in range(40):
        if f == 20:
            other = Gallery(gallery_at)  # the operator's CLI, another connection
            other.enrol("Bob", [EnrolItem(CENTRES[1], 0.9, "bob-1")])
            other.close()
        ts = f * FRAME_NS
        for r in recognise_frames(rec, [("cam", f, ts, [face(1, 200)])], embed):
            events += r.events
    kinds = [(e.kind, e.identity) for e in events]
    assert kinds[1][0] == EventKind.IDENTIFIED and kinds[1][1].startswith("unknown#")
    assert kinds[2] == (EventKind.IDENTITY_CHANGED, "Bob")
    assert events[2].previous_identity == kinds[1][1]


def test_rejected_track_is_not_named_again(gallery, gallery_at):
    rec = live_reloading_recognizer(gallery)
    events = []
    for f in range(40):
        if f == 15:
            ref = events[0].track_ref
            Gallery(gallery_at).reject(ref, "Alice")  # "this track is not Alice"
        for r in recognise_frames(rec, [("cam", f, f * FRAME_NS, [face(0, 200)])], embed):
            events += r.events
    kinds = [(e.kind, e.identity) for e in events]
    assert kinds[1] == (EventKind.IDENTIFIED, "Alice")
    assert kinds[2][0] == EventKind.IDENTITY_CHANGED and kinds[2][1].startswith("unknown#")


def test_complete_checks_the_embedding_count(gallery):
    rec = StreamRecognizer(gallery, config=RecognizerConfig(n_init=1))
    asked = rec.update("cam", 0, 0, [face(0, 100)])
    assert asked == [0]
    with pytest.raises(ValueError, match="1 embeddings asked, 0 given"):
        rec.complete("cam", 0, np.zeros((0, 128), np.float32))
    ended = rec.end_stream("cam", 1, FRAME_NS)
    assert [e.kind for e in ended] == [EventKind.ENDED]
