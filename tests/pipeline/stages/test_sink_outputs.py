"""The sink's outputs of #14, driven in-process: the events store (and its failures), the integrations fanout,
the live-view PUB (a real ZeroMQ SUB) and event frames; inference's choice of which frames carry pixels."""

from __future__ import annotations

import logging
import time

import cv2
import numpy as np
import pytest
import zmq
from prometheus_client import REGISTRY

from facestream.pipeline.config import PipelineConfig
from facestream.pipeline.events_store import EventsStore
from facestream.pipeline.preview import decode_preview
from facestream.pipeline.records import EventRecord, FaceRecord, ItemMeta
from facestream.pipeline.stages.inference import InferenceStage
from facestream.pipeline.stages.sink import SinkStage
from facestream.pipeline.wire import Item

from .conftest import ASTRONAUT_FACE


def _cfg(tmp_path, **web) -> PipelineConfig:
    return PipelineConfig(sources=[{"id": "cam", "uri": "demo"}], sink={"out_dir": str(tmp_path / "out")},
                          transport={"run_dir": str(tmp_path / "run")}, web=web)


def _event(seq: int, kind: str = "identified", name: str | None = "Eileen Collins") -> EventRecord:
    return EventRecord(event_id=f"t1:{kind}:{seq}", kind=kind, stream_id="cam", track_id=1, track_ref="t1", seq=seq,
                       ts_ns=time.time_ns(), first_ts_ns=time.time_ns(), identity=name or "unknown#4", name=name,
                       unknown_id=None if name else 4, score=0.7)


def _item(seq: int, rgb: np.ndarray | None = None, events=(), identity: str = "Eileen Collins") -> Item:
    face = FaceRecord(ASTRONAUT_FACE, 1.0, 0.5, track=1, identity=identity)
    return Item("cam", seq, time.time_ns(), time.monotonic_ns(),
                meta=ItemMeta("lossless", 1, 1.0, (512, 512), faces=[face], events=list(events)), data=rgb)


def _count(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Recorder:
    def __init__(self):
        self.events, self.closed = [], False

    def publish(self, event):
        self.events.append(event)

    def close(self):
        self.closed = True


def test_each_new_event_goes_to_the_store_and_the_fanout_once(tmp_path):
    sink = SinkStage(_cfg(tmp_path))
    sink.setup()
    sink.fanout.integrations.append(rec := Recorder())
    ev = _event(3)
    sink.process([_item(3, events=[ev]), _item(4, events=[ev, _event(4, "track_ended")])])
    sink.teardown()
    assert [e["event_id"] for e in rec.events] == [ev.event_id, "t1:track_ended:4"] and rec.closed
    store = EventsStore(tmp_path / "out" / "events.db", readonly=True)
    rows = {r["event_id"]: r for r in store.query()}
    store.close()
    assert set(rows) == {ev.event_id, "t1:track_ended:4"}
    assert rows[ev.event_id]["person"] == "Eileen Collins" and rows[ev.event_id]["frame"] is None, "no pixels: no frame"
    assert len((tmp_path / "out" / "events").glob("*.jsonl").__next__().read_text().splitlines()) == 2


def test_a_store_that_cannot_be_written_is_counted_and_logged_once(tmp_path, caplog):
    (tmp_path / "out" / "events.db").mkdir(parents=True)  # a folder where the file should be
    sink = SinkStage(_cfg(tmp_path))
    sink.setup()
    before = _count("facestream_sink_write_errors_total", reason="events_db")
    with caplog.at_level(logging.ERROR):
        sink.process([_item(k, events=[_event(k)]) for k in range(3)])
    sink.teardown()
    assert _count("facestream_sink_write_errors_total", reason="events_db") - before == 3
    assert sum("events store" in r.getMessage() for r in caplog.records) == 1
    lines = next((tmp_path / "out" / "events").glob("*.jsonl")).read_text().splitlines()
    assert len(lines) == 3, "the daily event file is written regardless"


def test_live_view_frames_are_rate_limited_annotated_and_event_frames_kept(tmp_path, astronaut_rgb):
    endpoint = f"ipc://{tmp_path / 'preview.ipc'}"
    sink = SinkStage(_cfg(tmp_path, preview_pub=endpoint, preview_fps=5, preview_width=256))
    sink.setup()
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(endpoint)
    try:
        time.sleep(0.3)  # the subscription reaches the PUB
        ev = _event(1)
        sink.process([_item(k, astronaut_rgb, events=[ev] if k == 1 else []) for k in range(6)])
        got = []
        while sub.poll(500):
            got.append(decode_preview(sub.recv_multipart()))
        assert len(got) == 1, "6 frames within 1/5 s: one live-view frame"
        time.sleep(0.25)
        sink.process([_item(6, astronaut_rgb)])
        assert sub.poll(2000)
        got.append(decode_preview(sub.recv_multipart()))
    finally:
        sub.close(0)
        sink.teardown()
    first = got[0]
    assert first is not None and first.stream == "cam"
    h = first.header
    assert (h["seq"], h["width"], h["height"]) == (0, 256, 256)
    assert {"ts_ns", "latency_ms", "fps", "dropped"} <= set(h)
    assert h["faces"] == [{"identity": "Eileen Collins", "track": 1, "box": [88, 40, 134, 85]}]
    img = cv2.imdecode(np.frombuffer(first.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (256, 256, 3)
    assert got[1].header["seq"] == 6 and got[1].header["fps"] > 0
    frame = tmp_path / "out" / "frames" / f"{ev.event_id}.jpg"
    assert cv2.imread(str(frame)).shape == (512, 512, 3), "the event's frame, at the travelling size"
    store = EventsStore(tmp_path / "out" / "events.db", readonly=True)
    assert store.get(ev.event_id)["frame"] == f"frames/{ev.event_id}.jpg"
    store.close()


def test_unknown_faces_are_blurred_in_the_live_view_and_the_event_frame(tmp_path, astronaut_rgb):
    endpoint = f"ipc://{tmp_path / 'preview.ipc'}"
    cfg = _cfg(tmp_path, preview_pub=endpoint, preview_width=512).model_copy(
        update={"privacy": PipelineConfig(privacy={"blur_unknown": True}).privacy})
    sink = SinkStage(cfg)
    sink.setup()
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"cam")
    sub.connect(endpoint)
    try:
        time.sleep(0.3)
        ev = _event(0, name=None)
        sink.process([_item(0, astronaut_rgb, events=[ev], identity="unknown#4")])
        assert sub.poll(2000)
        frame = decode_preview(sub.recv_multipart())
    finally:
        sub.close(0)
        sink.teardown()
    x1, y1, x2, y2 = (int(v) for v in ASTRONAUT_FACE)
    inner = (slice(y1 + 10, y2 - 10), slice(x1 + 10, x2 - 10))

    def detail(bgr):
        return float(cv2.Laplacian(cv2.cvtColor(bgr[inner], cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())

    source = detail(cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2BGR))
    assert frame.header["faces"][0]["identity"] == "unknown#4"
    assert detail(cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_COLOR)) < 0.2 * source
    assert detail(cv2.imread(str(tmp_path / "out" / "frames" / f"{ev.event_id}.jpg"))) < 0.2 * source


@pytest.mark.parametrize("video", [False, True])
def test_inference_forwards_pixels_for_the_live_view_at_most_preview_fps(tmp_path, video):
    cfg = PipelineConfig(sources=[{"id": "cam", "uri": "demo"}], transport={"run_dir": str(tmp_path)},
                         web={"preview_pub": f"ipc://{tmp_path / 'p.ipc'}", "preview_fps": 2}, sink={"video": video})
    stage = InferenceStage(cfg)
    picks = [stage.wants_pixels("cam", []) for _ in range(5)]
    assert picks == ([True] * 5 if video else [True, False, False, False, False])
    assert stage.wants_pixels("other", []), "per stream"
    assert stage.wants_pixels("cam", [_event(1)]), "an identification always carries its frame"
    assert not stage.wants_pixels("cam", [_event(1, "track_ended")]) or video
    off = InferenceStage(PipelineConfig(sources=[{"id": "cam", "uri": "demo"}], transport={"run_dir": str(tmp_path)}))
    assert not off.wants_pixels("cam", [_event(1)]), "no live view, no video: no pixels"
