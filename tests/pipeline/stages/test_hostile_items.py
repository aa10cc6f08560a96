"""A wire-valid message with a bad field is a counted rejection, never a crash (issue #13).

Each case feeds one stage, through its receive path, a message whose header is well-formed msgpack but one
field is bad (wrong type, NaN/inf, huge numbers, long strings, nested junk, path characters in ids); the
stage must count it in ``facestream_messages_rejected_total{stage, reason}``, queue nothing from it, and
still take and process the next good item.
"""

from __future__ import annotations

import json
import math

import cv2
import pytest

from facestream.pipeline.records import ItemMeta
from facestream.pipeline.stages.inference import InferenceStage
from facestream.pipeline.stages.preprocess import PreprocessStage
from facestream.pipeline.stages.sink import SinkStage
from facestream.pipeline.wire import MSG_BATCH, MSG_EOS, MSG_FRAME, MSG_RESULT, Item

from .memory_outlet import config, header_with, message, rejected, stage_with_memory_outlet

GOOD_FACE = {"box": [10.0, 10.0, 50.0, 60.0], "score": 1.0, "quality": 0.5, "landmarks": [[20.0, 30.0]] * 5}
GOOD_EVENT = {"event_id": "e-0123456789abcdef", "kind": "track_started", "stream_id": "cam", "track_id": 1,
              "track_ref": "t-0123456789abcdef", "seq": 0, "ts_ns": 1, "first_ts_ns": 1}


def item(meta=None, **fields):
    d = {"stream": "cam", "seq": 1, "ts": [1, 1], "payload": {"enc": "none"}, "meta": meta or {}}
    d.update(fields)
    return d


def face(**over):
    return {**GOOD_FACE, **over}


def event(**over):
    return {**GOOD_EVENT, **over}


# Fields every stage reads: what capture stamps, stage timestamps, drops, the sender's name.
COMMON = [
    ("epoch is text", item({"epoch": "abc"}), "bad_meta"),
    ("epoch is negative", item({"epoch": -1}), "bad_meta"),
    ("epoch is a float", item({"epoch": 1.5}), "bad_meta"),
    ("policy is junk", item({"policy": {"a": [1, 2]}}), "bad_meta"),
    ("stage name is a list", item(stages=[[["x"], 1, 2]]), "bad_field"),
    ("stage name is long", item(stages=[["s" * 200, 1, 2]]), "bad_field"),
    ("stage entry is not a triple", item(stages=[5]), "bad_field"),
    ("drop stage has a path", item(drops=[["../../etc", "stale", 1]]), "bad_field"),
    ("drop reason is a map", item(drops=[["capture", {"x": 1}, 1]]), "bad_field"),
    ("drop count is huge", item(drops=[["capture", "stale", 2**62]]), "bad_field"),
    ("error is not text", item({"error": ["x"]}), "bad_meta"),
    ("error is long", item({"error": "x" * 5000}), "bad_meta"),
    ("frames_total is text", item({"frames_total": "many"}), "bad_meta"),
]
# What preprocess adds, read by inference and the sink.
SCALED = [
    ("scale is NaN", item({"scale": math.nan}), "bad_meta"),
    ("scale is inf", item({"scale": math.inf}), "bad_meta"),
    ("scale is zero", item({"scale": 0}), "bad_meta"),
    ("scale is huge", item({"scale": 1e308}), "bad_meta"),
    ("scale is text", item({"scale": "0.5"}), "bad_meta"),
    ("scale is a boolean", item({"scale": True}), "bad_meta"),
    ("src_shape is junk", item({"src_shape": [[1], 2]}), "bad_meta"),
]
# What inference adds, read by the sink.
RESULTS = [
    ("faces is a map", item({"faces": {"a": 1}}), "bad_face"),
    ("too many faces", item({"faces": [GOOD_FACE] * 2000}), "bad_face"),
    ("box is text", item({"faces": [face(box=[0, 0, "x", 1])]}), "bad_face"),
    ("box has NaN", item({"faces": [face(box=[0, 0, math.nan, 1])]}), "bad_face"),
    ("box is huge", item({"faces": [face(box=[0, 0, 1e300, 1])]}), "bad_face"),
    ("box is nested junk", item({"faces": [face(box=[[[[1]]], 2, 3, 4])]}), "bad_face"),
    ("box is inverted", item({"faces": [face(box=[50, 50, 10, 10])]}), "bad_face"),
    ("score is inf", item({"faces": [face(score=-math.inf)]}), "bad_face"),
    ("score is missing", item({"faces": [{"box": [0, 0, 1, 1]}]}), "bad_face"),
    ("identity is long", item({"faces": [face(identity="n" * 10_000)]}), "bad_face"),
    ("identity has control characters", item({"faces": [face(identity="a\nb")]}), "bad_face"),
    ("track is a float", item({"faces": [face(track=1.5)]}), "bad_face"),
    ("landmarks are junk", item({"faces": [face(landmarks=[[1, 2, 3]])]}), "bad_face"),
    ("events is text", item({"events": "boom"}), "bad_event"),
    ("event id has a path", item({"events": [event(event_id="../../etc/passwd")]}), "bad_event"),
    ("event id ends in a newline", item({"events": [event(event_id="e-1\n")]}), "bad_event"),
    ("event kind is unknown", item({"events": [event(kind="boom")]}), "bad_event"),
    ("event seq is huge", item({"events": [event(seq=2**64 - 1)]}), "bad_event"),
    ("event score is NaN", item({"events": [event(score=math.nan)]}), "bad_event"),
    ("event stream id has a slash", item({"events": [event(stream_id="a/b")]}), "bad_event"),
    ("event is missing its id", item({"events": [{k: v for k, v in GOOD_EVENT.items() if k != "event_id"}]}),
     "bad_event"),
]


def _ids(cases):
    return [c[0] for c in cases]


def _check(stage, parts, reason, good_parts, went_through):
    before = rejected(stage.name, reason)
    stage.on_parts(parts)
    assert rejected(stage.name, reason) == before + 1, f"{stage.name} did not count a {reason} rejection"
    assert not stage.queue, "nothing of a rejected message is queued"
    stage.on_parts(good_parts)
    stage.process_queue()
    assert went_through(), "the next good item did not go through"


@pytest.mark.parametrize(("case", "bad", "reason"), COMMON, ids=_ids(COMMON))
def test_preprocess_rejects_a_bad_field_and_takes_the_next_frame(tmp_path, astronaut_bgr, case, bad, reason):
    stage, out = stage_with_memory_outlet(PreprocessStage, config(tmp_path, preprocess={"batch_size": 1}),
                                          "inference")
    good = message(MSG_FRAME, [Item("cam", 2, 1, 1, meta=ItemMeta("lossless", 5), data=astronaut_bgr)], "capture")
    _check(stage, header_with(MSG_FRAME, bad, "capture"), reason, good, lambda: [it.seq for it in out.items()] == [2])


@pytest.fixture(scope="module")
def inference(tmp_path_factory, dlib_store):
    """One inference stage with real models for every case (loading them once)."""
    tmp = tmp_path_factory.mktemp("inference")
    cfg = config(tmp, inference={"models_dir": str(dlib_store.root)}, preprocess={"batch_size": 1})
    stage, out = stage_with_memory_outlet(InferenceStage, cfg, "sink")
    stage.setup()
    yield stage, out
    stage.teardown()


@pytest.mark.parametrize(("case", "bad", "reason"), COMMON + SCALED, ids=_ids(COMMON + SCALED))
def test_inference_rejects_a_bad_field_and_takes_the_next_batch(inference, astronaut_rgb, case, bad, reason):
    stage, out = inference
    out.sent.clear()
    small = cv2.resize(astronaut_rgb, (128, 128))
    good = message(MSG_BATCH, [Item("cam", 2, 1, 1, meta=ItemMeta("lossless", 5, 0.25), data=small)], "preprocess")
    _check(stage, header_with(MSG_BATCH, bad, "preprocess"), reason, good,
           lambda: [(it.seq, it.meta.scale) for it in out.items(MSG_RESULT)] == [(2, 0.25)])


@pytest.mark.parametrize(("case", "bad", "reason"), COMMON + SCALED + RESULTS, ids=_ids(COMMON + SCALED + RESULTS))
def test_sink_rejects_a_bad_field_and_writes_the_next_result(tmp_path, case, bad, reason):
    stage, _ = stage_with_memory_outlet(SinkStage, config(tmp_path), None)
    stage.setup()
    results = tmp_path / "out" / "results.jsonl"
    good = message(MSG_RESULT, [Item("cam", 2, 1, 1, meta=ItemMeta("lossless", 5, 1.0, faces=[]))], "inference")
    try:
        _check(stage, header_with(MSG_RESULT, bad, "inference"), reason, good,
               lambda: [json.loads(x)["seq"] for x in results.read_text().splitlines()] == [2])
    finally:
        stage.teardown()


def test_a_bad_end_of_stream_is_rejected_and_the_stream_still_ends(tmp_path):
    stage, _ = stage_with_memory_outlet(SinkStage, config(tmp_path), None)
    bad = header_with(MSG_EOS, item({"frames_total": "many"}), "inference")
    before = rejected("sink", "bad_meta")
    stage.on_parts(bad)
    assert rejected("sink", "bad_meta") == before + 1 and not stage.eos_done
    stage.on_parts(message(MSG_EOS, [Item("cam", 0, meta=ItemMeta(frames_total=0))], "inference"))
    assert "cam" in stage.eos_done and stage.finished()


@pytest.mark.parametrize(("mtype", "bad", "reason"), [
    (MSG_EOS, item(stream="other"), "unknown_stream"),  # would end a run whose streams never ended
    (MSG_RESULT, item(), "bad_type"),  # preprocess takes frames only
    (MSG_FRAME, item(), "bad_field"),  # a sender name that is not a stage name
])
def test_a_stage_rejects_what_is_not_for_it(tmp_path, astronaut_bgr, mtype, bad, reason):
    stage, out = stage_with_memory_outlet(PreprocessStage, config(tmp_path, preprocess={"batch_size": 1}),
                                          "inference")
    sender = "x" * 100 if reason == "bad_field" else "capture"
    good = message(MSG_FRAME, [Item("cam", 2, 1, 1, meta=ItemMeta("lossless", 5), data=astronaut_bgr)], "capture")
    _check(stage, header_with(mtype, bad, sender), reason, good, lambda: [it.seq for it in out.items()] == [2])
    assert not stage.eos_done
