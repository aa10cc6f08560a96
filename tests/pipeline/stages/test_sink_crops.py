"""Best shots travel with their events and the sink keeps them (#15: crops where the events are, not on the
inference host): written under the sink's out_dir/crops with its own file name; a peer's bad crop is refused."""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import msgpack
import numpy as np
import pytest

from facestream.pipeline.config import PipelineConfig
from facestream.pipeline.recognition.best_shots import best_shot
from facestream.pipeline.records import MAX_CROP_BYTES, EventRecord
from facestream.pipeline.stages.sink import SinkStage
from facestream.pipeline.wire_checks import WireError


def _jpeg(value: int = 120) -> bytes:
    chip = np.full((150, 150, 3), value, np.uint8)
    cv2.circle(chip, (75, 75), 40, (255, 0, 0), -1)
    return cv2.imencode(".jpg", chip)[1].tobytes()


def _event(jpeg: bytes | None, stream: str = "cam", ref: str = "t-00aa") -> EventRecord:
    now = time.time_ns()
    return EventRecord(event_id="e-" + ref[2:] + "01", kind="identified", stream_id=stream, track_id=1,
                       track_ref=ref, seq=5, ts_ns=now, first_ts_ns=now, identity="Ada", name="Ada", score=0.9,
                       best_shot_path="/elsewhere/on/the/inference/host.jpg", best_shot_jpeg=jpeg)


def _sink(tmp_path, crops: bool = True) -> SinkStage:
    cfg = PipelineConfig(sources=[{"id": "cam", "uri": "demo"}], transport={"run_dir": str(tmp_path / "run")},
                         sink={"out_dir": str(tmp_path / "out"), "crops": crops})
    sink = SinkStage(cfg)
    sink.setup()
    return sink


def test_the_best_shot_crosses_the_wire_and_the_sink_writes_it_under_its_own_out_dir(tmp_path):
    jpeg = _jpeg()
    wire = msgpack.unpackb(msgpack.packb(_event(jpeg).to_meta(), use_bin_type=True), raw=False)
    received = EventRecord.from_meta(wire)
    assert received.best_shot_jpeg == jpeg
    sink = _sink(tmp_path)
    try:
        stored = sink.store_event(received)
    finally:
        sink.teardown()
    path = tmp_path / "out" / "crops" / "cam" / "t-00aa.jpg"
    assert stored["best_shot_path"] == str(path), "the sink's own path, not the peer's"
    assert path.read_bytes() == jpeg
    assert "best_shot_jpeg" not in stored
    line = (next((tmp_path / "out" / "events").glob("*.jsonl"))).read_text()
    assert json.loads(line)["best_shot_path"] == str(path) and "best_shot_jpeg" not in line


def test_with_crops_off_the_sink_keeps_the_event_without_a_crop(tmp_path):
    sink = _sink(tmp_path, crops=False)
    try:
        stored = sink.store_event(_event(_jpeg()))
    finally:
        sink.teardown()
    assert stored["best_shot_path"] is None
    assert not (tmp_path / "out" / "crops").exists()


@pytest.mark.parametrize("bad", [b"GIF89a" + b"\0" * 100, b"", b"\xff\xd8" + b"\0" * MAX_CROP_BYTES, "text"])
def test_a_crop_that_is_not_a_small_jpeg_is_refused_on_receipt(bad):
    meta = {**_event(None).to_meta(), "best_shot_jpeg": bad}
    with pytest.raises(WireError) as exc:
        EventRecord.from_meta(meta)
    assert exc.value.reason == "bad_event"


def test_shipped_best_shot_is_not_written_by_inference(tmp_path):
    chip = np.full((150, 150, 3), 90, np.uint8)
    path, jpeg = best_shot(tmp_path / "crops", True, "cam", "t-00bb", chip)
    assert path == str(tmp_path / "crops" / "cam" / "t-00bb.jpg") and not (tmp_path / "crops").exists()
    assert jpeg is not None and jpeg.startswith(b"\xff\xd8")
    path, jpeg = best_shot(tmp_path / "crops", False, "cam", "t-00bb", chip)
    assert jpeg is None and (tmp_path / "crops" / "cam" / "t-00bb.jpg").is_file()


@pytest.mark.parametrize("stream", ["..", "."])
def test_a_stream_id_of_dots_from_the_wire_keeps_the_crop_inside_crops(tmp_path, stream):
    received = EventRecord.from_meta(_event(_jpeg(), stream=stream).to_meta())  # valid on the wire
    sink = _sink(tmp_path)
    try:
        stored = sink.store_event(received)
    finally:
        sink.teardown()
    crops = (tmp_path / "out" / "crops").resolve()
    path = Path(stored["best_shot_path"]).resolve()
    assert path.is_file() and path.parent.parent == crops, f"{path} is not in a folder of {crops}"
