"""The stage records: one coordinate mapping, lossless round trips, and from_meta fuzzed (only WireError)."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facestream.pipeline.recognition.events import EventKind, new_event
from facestream.pipeline.recognition.identity import Identity
from facestream.pipeline.records import EventRecord, FaceRecord, ItemMeta, to_source
from facestream.pipeline.wire import WireError


def test_detector_coordinates_map_to_source_pixels_and_back():
    rec = FaceRecord.detected((88, 41, 133, 85), 1.16412, 0.81234, [(100, 60), (120, 61)], 0.5)
    assert rec.box == (176.0, 82.0, 266.0, 170.0) and rec.landmarks == ((200.0, 120.0), (240.0, 122.0))
    assert (rec.score, rec.quality) == (1.1641, 0.812)
    assert rec.box_in(0.5) == (88, 41, 133, 85)
    assert to_source([10], 0) == (10.0,), "no scale (0) means source pixels"


def test_records_survive_the_meta_round_trip():
    face = FaceRecord((1.0, 2.0, 30.0, 40.0), 0.9, 0.5, ((5.0, 6.0),), track=3, embedded=True,
                      identity="Eileen Collins", similarity=None)
    labelled = FaceRecord((1.0, 2.0, 30.0, 40.0), 0.9, 0.5).with_label("eileen", 0.87654)
    who = Identity("x", name="x", score=math.inf, confidence=0.123456)
    ev = EventRecord.from_event(new_event(EventKind.IDENTIFIED, "cam", 3, "t-abc", 7, 100, 90, who=who))
    assert ev.score is None and ev.confidence == 0.1235, "no infinities in JSON; floats rounded"
    meta = ItemMeta("latest", 12, 0.25, (480, 640), [face, labelled], [ev], 9, "IOError: gone")
    assert ItemMeta.from_meta(meta.to_meta()) == meta
    assert face.to_meta()["similarity"] is None and "confidence" not in face.to_meta()
    assert labelled.to_meta()["confidence"] == 0.8765 and "similarity" not in labelled.to_meta()
    assert ItemMeta().to_meta() == {}, "absent fields are not sent"
    still = FaceRecord((1.0, 2.0, 30.0, 40.0), 0.9, 0.5).with_still_identity("unknown", 0.81234)
    photo = ItemMeta("lossless", 12, faces=[still], stills=True, file="IMG 0001.jpg", frames_expected=90)
    assert ItemMeta.from_meta(photo.to_meta()) == photo
    assert still.to_meta() == {"box": [1.0, 2.0, 30.0, 40.0], "score": 0.9, "quality": 0.5, "landmarks": [],
                               "embedded": True, "identity": "unknown", "similarity": 0.8123}


@pytest.mark.parametrize("bad", [
    {"faces": [{"box": [0, 0, 1, 1], "score": 2**60}]},
    {"faces": [{"box": [0, 0, 1, 1], "score": 1, "embedded": 1}]},
    {"events": [{"event_id": "e-1"}]},
    {"src_shape": [0, 10]},
    {"src_shape": [10, 10, 3]},
    {"policy": "fastest"},
    {"stills": 1},
    {"file": "x" * 300},
    {"file": "bell\x07.jpg"},
    {"frames_expected": -1},
    [1, 2],
])
def test_from_meta_rejects_with_a_reason(bad):
    with pytest.raises(WireError) as e:
        ItemMeta.from_meta(bad)
    assert e.value.reason in ("bad_meta", "bad_face", "bad_event")


_junk = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=12,
)
_num = st.integers(-(2**66), 2**66) | st.floats(allow_nan=True, allow_infinity=True) | _junk
_face = st.fixed_dictionaries({}, optional={
    "box": st.lists(_num, max_size=5) | _junk, "score": _num, "quality": _num,
    "landmarks": st.lists(st.lists(_num, max_size=3), max_size=6) | _junk, "track": _num,
    "embedded": st.booleans() | _junk, "identity": st.text(max_size=300) | _junk, "similarity": _num,
    "confidence": _num})
_event = st.fixed_dictionaries({}, optional={
    "event_id": st.sampled_from(["e-1", "../e", ""]) | _junk, "kind": st.sampled_from([k.value for k in EventKind])
    | _junk, "stream_id": st.sampled_from(["cam", "a/b"]) | _junk, "track_id": _num, "track_ref": st.just("t-1"),
    "seq": _num, "ts_ns": _num, "first_ts_ns": _num, "score": _num, "best_shot_path": st.text(max_size=20)})
_meta = st.fixed_dictionaries({}, optional={
    "policy": st.sampled_from(["lossless", "latest", "x"]) | _junk, "epoch": _num, "scale": _num,
    "src_shape": st.lists(_num, max_size=3) | _junk, "faces": st.lists(_face, max_size=3) | _junk,
    "events": st.lists(_event, max_size=2) | _junk, "frames_total": _num, "error": st.text(max_size=600) | _junk,
    "stills": st.booleans() | _junk, "file": st.text(max_size=300) | _junk, "frames_expected": _num,
}) | _junk


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_meta)
def test_fuzz_from_meta_only_ever_raises_wire_error_and_what_passes_round_trips(meta):
    try:
        rec = ItemMeta.from_meta(meta)
    except WireError:
        return
    again = rec.to_meta()
    assert ItemMeta.from_meta(again) == rec
    for f in rec.faces or []:
        assert all(math.isfinite(v) and abs(v) <= 4 * 16384 for v in f.box)
    if rec.scale is not None:
        assert 0 < rec.scale <= 16
