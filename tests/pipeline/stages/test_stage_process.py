"""Each stage's receive path and ``process`` driven without sockets: encoded messages in (as a socket hands
them over), a :class:`MemoryOutlet` collecting what the stage sends, real models, the astronaut's face."""

from __future__ import annotations

import json
import logging
import time

import cv2
import numpy as np
import pytest

from facestream.pipeline.records import EventRecord, FaceRecord, ItemMeta
from facestream.pipeline.sources.base import SourceFrame
from facestream.pipeline.stages.books import DropBooks
from facestream.pipeline.stages.capture import CaptureStage
from facestream.pipeline.stages.inference import InferenceStage
from facestream.pipeline.stages.inlet import Inlet
from facestream.pipeline.stages.preprocess import PreprocessStage
from facestream.pipeline.stages.rate_log import RateLimitedLog
from facestream.pipeline.stages.sink import SinkStage
from facestream.pipeline.wire import MSG_BATCH, MSG_EOS, MSG_FRAME, MSG_RESULT, Item

from .conftest import ASTRONAUT_FACE
from .memory_outlet import config, message, stage_with_memory_outlet


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return ix * iy / union if union > 0 else 0.0


def test_capture_stamps_frames_counts_source_gaps_and_ends_the_stream(tmp_path, astronaut_bgr):
    stage, out = stage_with_memory_outlet(CaptureStage, config(tmp_path), "preprocess")
    buf = stage.buffers["cam"]
    now = time.time_ns()
    stage.send_frame("cam", buf, SourceFrame(astronaut_bgr, 0, now, 1))
    stage.send_frame("cam", buf, SourceFrame(astronaut_bgr, 3, now + 1, 2))  # the source skipped 2 frames
    stage.end_stream("cam", buf)
    frames = out.items(MSG_FRAME)
    assert [it.seq for it in frames] == [0, 3]
    assert all(it.meta.policy == "lossless" and it.meta.epoch == stage.epoch for it in frames)
    np.testing.assert_array_equal(frames[0].data, astronaut_bgr)
    assert frames[0].drops == [] and frames[1].drops == [["capture", "source_behind", 2]]
    assert frames[0].stages[0][0] == "capture" and frames[0].stages[0][2] >= frames[0].stages[0][1]
    (eos,) = out.items(MSG_EOS)
    assert (eos.seq, eos.meta.frames_total, eos.meta.error) == (4, 4, None)


def test_preprocess_sends_a_batch_of_detector_sized_rgb_frames_with_their_scale(tmp_path, astronaut_bgr):
    cfg = config(tmp_path, preprocess={"detector_width": 256, "detector_height": 256, "batch_size": 2})
    stage, out = stage_with_memory_outlet(PreprocessStage, cfg, "inference")
    grey = cv2.cvtColor(astronaut_bgr, cv2.COLOR_BGR2GRAY)
    for seq, img in enumerate((astronaut_bgr, grey)):
        stage.on_parts(message(MSG_FRAME, [Item("cam", seq, 1, 1, meta=ItemMeta("lossless", 5), data=img)],
                               "capture"))
    assert len(stage.queue) == 2
    stage.process_queue()
    (batch,) = out.sent
    assert batch.type == MSG_BATCH and [it.seq for it in batch.items] == [0, 1]
    colour, from_grey = batch.items
    expected = cv2.cvtColor(cv2.resize(astronaut_bgr, (256, 256), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(colour.data, expected)
    assert from_grey.data.shape == (256, 256, 3)
    assert (colour.meta.scale, colour.meta.src_shape, colour.meta.epoch) == (0.5, (512, 512), 5)
    assert [s[0] for s in colour.stages] == ["preprocess"]


def _inference(tmp_path, dlib_store, **inference):
    cfg = config(tmp_path, inference={"models_dir": str(dlib_store.root), "hog_upsample": 1, **inference})
    stage, out = stage_with_memory_outlet(InferenceStage, cfg, "sink")
    stage.setup()
    return stage, out


def test_inference_finds_the_face_and_reports_it_in_source_pixels(tmp_path, dlib_store, astronaut_rgb):
    stage, out = _inference(tmp_path, dlib_store)
    half = cv2.resize(astronaut_rgb, (256, 256), interpolation=cv2.INTER_AREA)
    try:
        stage.on_parts(message(MSG_BATCH, [Item("cam", 0, 1, 1, meta=ItemMeta("lossless", 5, 0.5, (512, 512)),
                                                data=half)], "preprocess"))
        stage.process_queue()
    finally:
        stage.teardown()
    (res,) = out.items(MSG_RESULT)
    assert res.data is None, "pixels go to the sink only when it writes video"
    (face,) = res.meta.faces
    assert iou(face.box, ASTRONAUT_FACE) > 0.7, f"{face.box} is not the face in source pixels"
    x1, y1, x2, y2 = face.box
    assert len(face.landmarks) == 5 and all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in face.landmarks)
    assert face.score > 0 and face.track is None and face.identity is None
    assert (res.meta.scale, res.meta.src_shape, res.meta.policy) == (0.5, (512, 512), "lossless")


def test_inference_tracks_faces_and_ends_their_tracks_with_the_stream(tmp_path, dlib_store, astronaut_rgb,
                                                                      monkeypatch):
    monkeypatch.delenv("FACESTREAM_GALLERY_KEY", raising=False)
    stage, out = _inference(tmp_path, dlib_store, embed=True, recognizer="gallery",
                            gallery=str(tmp_path / "gallery.db"))
    try:
        for seq in range(3):
            stage.on_parts(message(MSG_BATCH, [Item("cam", seq, 1 + seq, 1 + seq, meta=ItemMeta("lossless", 5, 1.0),
                                                    data=astronaut_rgb)], "preprocess"))
            stage.process_queue()
        stage.on_parts(message(MSG_EOS, [Item("cam", 3, meta=ItemMeta(epoch=5, frames_total=3))], "preprocess"))
    finally:
        stage.teardown()
    results = out.items(MSG_RESULT)
    assert [r.seq for r in results] == [0, 1, 2]
    tracks = {f.track for r in results for f in r.meta.faces if iou(f.box, ASTRONAUT_FACE) > 0.5}
    assert len(tracks) == 1 and None not in tracks, "the face keeps one track over the frames"
    assert any(f.embedded for r in results for f in r.meta.faces)
    kinds = [e.kind for r in results for e in r.meta.events]
    assert "track_started" in kinds
    (eos,) = out.items(MSG_EOS)
    assert eos.meta.frames_total == 3 and "track_ended" in [e.kind for e in eos.meta.events]


@pytest.mark.parametrize("ahead", [True, False])
def test_inference_detects_the_next_frame_ahead_and_reports_the_same_faces(tmp_path, dlib_store, astronaut_rgb,
                                                                          ahead):
    """inference.detect_ahead (two streams): the next queued frame is detected while the current one is
    finished; the results are those of detecting one frame after the other, and an end of stream that
    arrives meanwhile goes on after the batch (in order)."""
    cfg = config(tmp_path / str(ahead), inference={"models_dir": str(dlib_store.root), "hog_upsample": 1,
                                                   "detect_ahead": ahead},
                 preprocess={"batch_size": 1}, sources=[{"id": "a", "uri": "demo"}, {"id": "b", "uri": "demo"}])
    stage, out = stage_with_memory_outlet(InferenceStage, cfg, "sink")
    stage.setup()
    order = [("a", 0), ("b", 0), ("b", 1), ("a", 1), ("b", 2)]
    frames = {key: np.roll(astronaut_rgb, 8 * k, axis=1) for k, key in enumerate(order)}
    try:
        for k, (stream, seq) in enumerate(order):
            stage.on_parts(message(MSG_BATCH, [Item(stream, seq, 1 + k, 1 + k, meta=ItemMeta("lossless", 5, 1.0),
                                                    data=frames[stream, seq])], "preprocess"))
        stage.processing = True  # as if it arrived while a batch was processed (receive_pending)
        stage.on_parts(message(MSG_EOS, [Item("b", 3, meta=ItemMeta(epoch=5, frames_total=3))], "preprocess"))
        stage.processing = False
        assert not out.items(MSG_EOS) and stage.deferred_eos
        stage.process_queue()  # a's first frame, then b's end of stream: every frame of b goes before it
        while stage.queue:
            stage.process_queue()
        used, discarded = stage.work.ahead.used, stage.work.ahead.discarded
    finally:
        stage.teardown()
    results = out.items(MSG_RESULT)
    assert [(r.stream, r.seq) for r in results] == order and [e.stream for e in out.items(MSG_EOS)] == ["b"]
    assert (used, discarded) == ((4, 0) if ahead else (0, 0)), (used, discarded)  # all but the first
    for r in results:
        (face,) = r.meta.faces
        shift = 8 * order.index((r.stream, r.seq))
        assert iou(face.box, (ASTRONAUT_FACE[0] + shift, ASTRONAUT_FACE[1], ASTRONAUT_FACE[2] + shift,
                              ASTRONAUT_FACE[3])) > 0.7, (r.stream, r.seq, face.box)


def _event(kind: str, seq: int) -> EventRecord:
    return EventRecord(f"e-{kind[:6]}{seq}", kind, "cam", 1, "t-1", seq, 10 + seq, 10, identity="Eileen Collins",
                       name="Eileen Collins", score=0.93)


def test_sink_writes_results_events_video_and_the_books(tmp_path, astronaut_rgb):
    stage, _ = stage_with_memory_outlet(SinkStage, config(tmp_path, sink={"video": True}), None)
    stage.setup()
    face = FaceRecord(ASTRONAUT_FACE, 1.53, 0.81, ((200.0, 110.0),) * 5, track=1, identity="Eileen Collins",
                      similarity=0.93)
    half = cv2.resize(astronaut_rgb, (256, 256))
    meta = ItemMeta("lossless", 7, 0.5, (512, 512), [face], [_event("identified", 0)])
    try:
        stage.on_parts(message(MSG_RESULT, [Item("cam", 0, time.time_ns(), 1, [["capture", 1, 2]], meta=meta,
                                                 drops=[["preprocess", "stale", 1]], data=half)], "inference"))
        stage.process_queue()
        stage.on_parts(message(MSG_EOS, [Item("cam", 2, meta=ItemMeta(epoch=7, frames_total=2, events=[
            _event("track_ended", 2)]))], "inference"))
    finally:
        stage.teardown()
    out = tmp_path / "out"
    (line,) = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert line["faces"] == [face.to_meta()] and line["seq"] == 0
    assert line["faces"][0]["box"] == list(ASTRONAUT_FACE) and line["faces"][0]["similarity"] == 0.93
    assert set(line["stages"]) == {"capture", "sink"}
    events = [json.loads(x) for p in (out / "events").glob("*.jsonl") for x in p.read_text().splitlines()]
    assert [e["kind"] for e in events] == ["identified", "track_ended"]
    assert events[0] == _event("identified", 0).to_meta()
    books = json.loads((out / "summary.json").read_text())["streams"]["cam"]
    assert (books["results"], books["dropped"], books["lost"], books["ended"]) == (1, {"preprocess/stale": 1}, 0,
                                                                                    True)
    assert (out / "cam.mp4").stat().st_size > 0


def test_a_full_hop_drops_latest_frames_and_the_next_item_carries_the_count(tmp_path, astronaut_bgr):
    stage, out = stage_with_memory_outlet(PreprocessStage, config(tmp_path, preprocess={"batch_size": 1}),
                                          "inference")
    for seq, full in ((0, True), (1, False)):
        out.full = full
        stage.on_parts(message(MSG_FRAME, [Item("cam", seq, 1, 1, meta=ItemMeta("latest", 5), data=astronaut_bgr)],
                               "capture"))
        stage.process_queue()
    (sent,) = out.items()
    assert sent.seq == 1 and sent.drops == [["preprocess", "backpressure", 1]]


@pytest.mark.parametrize("fails_on", [0, 1])
def test_a_batch_that_fails_in_process_is_dropped_and_counted_and_the_stage_goes_on(tmp_path, astronaut_bgr,
                                                                                    fails_on):
    stage, out = stage_with_memory_outlet(PreprocessStage, config(tmp_path, preprocess={"batch_size": 1}),
                                          "inference")
    real = stage.process

    def process(items):
        if items[0].seq == fails_on:
            raise RuntimeError("a bug")
        real(items)

    stage.process = process
    for seq in range(2):
        stage.on_parts(message(MSG_FRAME, [Item("cam", seq, 1, 1, meta=ItemMeta("lossless", 5), data=astronaut_bgr)],
                               "capture"))
        stage.process_queue()
    (sent,) = out.items()
    assert sent.seq == 1 - fails_on
    if fails_on == 0:  # the failed frame's drop goes on with the next item
        assert sent.drops == [["preprocess", "error", 1]]
    else:  # ... or waits for one
        assert sent.drops == [] and stage.drop_books.pending["cam"] == {("preprocess", "error"): 1}


def test_a_stage_counts_its_drops_in_the_books_it_is_given_and_hands_them_on(tmp_path, astronaut_bgr):
    books = DropBooks("preprocess")
    stage, out = stage_with_memory_outlet(PreprocessStage, config(tmp_path, preprocess={"batch_size": 1}),
                                          "inference", books=books)
    assert stage.drop_books is books and stage.inlet.books is books and out.books is books
    for seq in range(3):  # live frames beyond the stage's queue: the oldest is dropped as stale
        stage.on_parts(message(MSG_FRAME, [Item("cam", seq, 1, 1, meta=ItemMeta("latest", 5), data=astronaut_bgr)],
                               "capture"))
    assert [it.seq for it in stage.queue] == [1, 2]
    assert books.pending["cam"] == {("preprocess", "stale"): 1}
    stage.process_queue()  # the newest live frame goes; the one it supersedes is dropped as stale too
    (sent,) = out.items()
    assert sent.seq == 2 and sent.drops == [["preprocess", "stale", 2]]
    assert "cam" not in books.pending, "the drops went on with the next item"


def test_a_stage_takes_its_input_through_the_inlet_it_is_given(tmp_path, astronaut_bgr):
    cfg = config(tmp_path)
    books = DropBooks("preprocess")
    inlet = Inlet("preprocess", cfg, PreprocessStage.accepts, books, RateLimitedLog(logging.getLogger("t")))
    inlet.streams = set()  # this inlet knows no stream: everything it is handed is rejected
    stage, out = stage_with_memory_outlet(PreprocessStage, cfg, "inference", inlet=inlet)
    assert stage.inlet is inlet and stage.drop_books is books, "the books come with the inlet"
    stage.on_parts(message(MSG_FRAME, [Item("cam", 0, 1, 1, meta=ItemMeta("lossless", 5), data=astronaut_bgr)],
                           "capture"))
    assert not stage.queue and out.sent == []
    with pytest.raises(ValueError, match="other drop books"):
        PreprocessStage(cfg, inlet=inlet, books=DropBooks("preprocess"))
