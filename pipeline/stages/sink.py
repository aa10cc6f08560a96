"""Sink stage: one JSON line per frame result (file, stdout, ZeroMQ PUB), track events, annotated MP4.

Each new track event goes to the daily ``events/DAY.jsonl``, the events store (``events.db``, with the frame
of an identification: preview_out.py) and the integrations (MQTT, webhooks: pipeline/integrations/). The live
view's frames go out on their own PUB (preview_out.py).

It also does the books: for every stream it counts results, drops (by stage and reason, carried in the
items) and frames lost in flight, and writes them to ``out_dir/summary.json`` at end of stream. A write
that fails (disk full, unwritable path) is counted and logged once; the pipeline keeps running.
"""

from __future__ import annotations

import collections
import json
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import zmq

from facestream.fsutil import atomic_write

from .. import metrics as m
from ..config import PipelineConfig
from ..integrations import EventFanout, build_fanout
from ..preview import EVENT_FRAME_KINDS
from ..records import EventRecord
from ..transport import open_publisher
from ..wire import MSG_RESULT, Item
from .annotate import VideoWriters
from .base import Stage
from .books import DropBooks
from .inlet import Inlet
from .outlet import Outlet
from .preview_out import Annotated, PreviewOut
from .progress import ProgressReporter
from .retention import RetentionSweeper
from .sink_crops import store_crop
from .sink_store import StoreWriter


@dataclass
class StreamBooks:
    epoch: int = 0
    results: int = 0
    max_seq: int = -1
    last_seq: int = -1
    out_of_order: int = 0
    dropped: collections.Counter = field(default_factory=collections.Counter)
    ended: bool = False
    frames_total: int | None = None
    error: str = ""

    def lost(self) -> int:
        total = self.frames_total if self.frames_total is not None else self.max_seq + 1
        return max(0, total - self.results - sum(self.dropped.values()))

    def summary(self) -> dict[str, Any]:
        return {
            "frames_total": self.frames_total,
            "results": self.results,
            "dropped": {f"{s}/{r}": n for (s, r), n in sorted(self.dropped.items())},
            "dropped_total": sum(self.dropped.values()),
            "lost": self.lost(),
            "out_of_order": self.out_of_order,
            "ended": self.ended,
            **({"error": self.error} if self.error else {}),
        }


class SafeWriter:
    """Append-only text file that survives write failures: counts them, logs once per reason, retries later."""

    def __init__(self, path: Path, kind: str, log):
        self.path, self.kind, self.log = path, kind, log
        self.f = None
        self.failed_reason = ""

    def write(self, line: str) -> bool:
        try:
            if self.f is not None and self.replaced():
                self.close()  # retention or `gallery forget` rewrote the file: append to the new one
            if self.f is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the run
            self.f.write(line + "\n")
            self.f.flush()
            if self.failed_reason:
                self.log.info("sink: writing %s works again", self.path)
                self.failed_reason = ""
            m.SINK_EVENTS.labels(self.kind).inc()
            return True
        except OSError as exc:
            reason = {28: "disk_full", 13: "permission", 30: "read_only"}.get(exc.errno or 0, "io_error")
            m.SINK_WRITE_ERRORS.labels(reason).inc()
            if reason != self.failed_reason:
                self.log.error("sink: cannot write %s (%s); results are counted as unwritten until it works",
                               self.path, exc.strerror or exc)
                self.failed_reason = reason
            self.close()
            return False

    def replaced(self) -> bool:
        try:
            return os.stat(self.path).st_ino != os.fstat(self.f.fileno()).st_ino
        except OSError:
            return True

    def close(self) -> None:
        if self.f is not None:
            try:
                self.f.close()
            except OSError:
                pass
            self.f = None


class SinkStage(Stage):
    name = "sink"
    accepts = (MSG_RESULT,)

    def __init__(self, cfg: PipelineConfig, outlet: Outlet | None = None, *, inlet: Inlet | None = None,
                 books: DropBooks | None = None):
        super().__init__(cfg, outlet, inlet=inlet, books=books)
        self.batch_size = 16
        sc = cfg.sink
        self.out = Path(sc.out_dir)
        self.books: dict[str, StreamBooks] = collections.defaultdict(StreamBooks)
        self.results = SafeWriter(self.out / "results.jsonl", "result", self.log) if sc.jsonl else None
        self.events_seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self.events: SafeWriter | None = None
        self.pub: zmq.Socket | None = None
        self.video = VideoWriters(self.out, sc.video_fps, cfg.privacy.blur_unknown, self.log) if sc.video else None
        self.retention = RetentionSweeper(self.out, cfg.privacy.retention_days, self.log,
                                          events_db=cfg.events_db())
        self.progress = ProgressReporter(sc.progress_interval_s) if sc.progress_interval_s > 0 else None
        self.store = StoreWriter(cfg.events_db(), self.log)
        self.preview = PreviewOut(cfg, self.out, self.log)
        self.fanout: EventFanout | None = None

    def setup(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        if self.cfg.sink.pub:
            self.pub = open_publisher(zmq.Context.instance(), self.cfg)
        self.preview.open(zmq.Context.instance())
        self.fanout = build_fanout(self.cfg, self.log)

    def account(self, it: Item) -> StreamBooks:
        b = self.books[it.stream]
        epoch = it.meta.epoch or 0
        if b.epoch and epoch and epoch != b.epoch:
            self.log.warning("sink: stream %s restarted at capture (new epoch); previous books: %s",
                             it.stream, b.summary())
            b = self.books[it.stream] = StreamBooks()
        if epoch:
            b.epoch = epoch
        for stage, reason, count in it.drops:
            b.dropped[(str(stage), str(reason))] += int(count)
        it.drops = []
        return b

    def process(self, items: list[Item]) -> None:
        for it in items:
            if it.data is not None and not _is_rgb(it.data):
                self.drop_books.drop(it, "bad_image")  # pixels the video writer cannot take
                continue
            b = self.account(it)
            if it.seq <= b.last_seq:
                b.out_of_order += 1
            b.last_seq = it.seq
            b.max_seq = max(b.max_seq, it.seq)
            b.results += 1
            self.preview.result(it.stream)
            self.emit(it)
            if self.progress is not None:
                self.progress.result(it.stream, it.meta)
            m.FRAMES_OUT.labels(self.name, it.stream).inc()
            m.CAPTURE_TO_STAGE_SECONDS.labels(self.name).observe(max(0.0, (time.time_ns() - it.wall_ns) / 1e9))

    def emit(self, it: Item) -> None:
        now = time.time_ns()
        if it.stages and it.stages[-1][0] == self.name:
            it.stages[-1][2] = now
        record: dict[str, Any] = {
            "stream": it.stream,
            "seq": it.seq,
            "capture_wall_ns": it.wall_ns,
            "capture_mono_ns": it.mono_ns,
            "latency_ms": round((now - it.wall_ns) / 1e6, 2),
            "stages": {s[0]: [s[1], s[2]] for s in it.stages},  # validated [name, ns, ns] on receipt
            "faces": [f.to_meta() for f in it.meta.faces or []],
        }
        if it.meta.file is not None:  # a still's file name (image folders)
            record["file"] = it.meta.file
        view = self.preview.view(it)
        if it.meta.events:
            record["events"] = [self.store_event(e, view) for e in it.meta.events]
        line = json.dumps(record, separators=(",", ":"), default=_json_default)
        if self.results is not None:
            self.results.write(line)
        if self.cfg.sink.stdout:
            try:
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
            except (OSError, ValueError):
                m.SINK_WRITE_ERRORS.labels("stdout").inc()
        if self.pub is not None:
            try:
                self.pub.send_multipart([it.stream.encode(), line.encode()], zmq.NOBLOCK)
            except zmq.Again:
                m.SINK_WRITE_ERRORS.labels("pub_full").inc()
        if self.video is not None and it.data is not None:
            self.video.write(it.stream, it.data, it.meta.faces or [], 1.0 if it.meta.scale is None else it.meta.scale)
        self.preview.publish(view, sum(self.books[it.stream].dropped.values()))

    def store_event(self, record: EventRecord, view: Annotated | None = None) -> dict[str, Any]:
        """Write an event once (ids are deterministic, so a replay does not duplicate it). An identification
        brings its best shot's JPEG, written here under out_dir/crops (``best_shot_path``), and its frame's
        pixels (``view``) when the live view is on or the sink writes video."""
        eid = record.event_id
        if eid in self.events_seen:
            return replace(record, best_shot_jpeg=None).to_meta()
        record = store_crop(self.out, record, self.cfg.sink.crops, self.log)
        event = record.to_meta()
        self.events_seen[eid] = None
        while len(self.events_seen) > 100_000:
            self.events_seen.popitem(last=False)
        day = time.strftime("%Y-%m-%d", time.gmtime())
        if self.events is None or self.events.path.stem != day:  # one file per day (retention deletes by day)
            if self.events is not None:
                self.events.close()
            self.events = SafeWriter(self.out / "events" / f"{day}.jsonl", "event", self.log)
        self.events.write(json.dumps(event, separators=(",", ":"), default=_json_default))
        frame = self.preview.save_event_frame(view, eid) if view is not None and record.kind in EVENT_FRAME_KINDS \
            else None
        if self.store.add(event, frame=frame) is not False and self.fanout is not None:  # False: stored before
            try:
                self.fanout.publish(event)
            except Exception as exc:  # an integration's bug must not stop the sink
                self.rlog.warning("fanout", "sink: an integration failed on event %s: %s", eid, exc)
        return event

    def on_eos(self, item: Item) -> None:
        self.flush_stream(item.stream)
        b = self.account(item)
        if item.stream in self.eos_done:
            return  # a re-sent end of stream
        b.ended = True
        for event in item.meta.events:
            self.store_event(event)
        b.frames_total = item.meta.frames_total
        if item.meta.error:
            b.error = item.meta.error
        lost = b.lost()
        if lost:
            m.FRAMES_LOST.labels(item.stream).inc(lost)
        self.eos_done[item.stream] = item
        if self.progress is not None:
            self.progress.ended(item.stream)
        if self.video is not None:
            self.video.close(item.stream)
        self.log.info("sink: stream %s ended: %s", item.stream, b.summary())
        self.write_summary()

    def write_summary(self) -> None:
        data = {"streams": {k: v.summary() for k, v in self.books.items()}, "written_at_ns": time.time_ns()}
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write(self.out / "summary.json", json.dumps(data, indent=2))
        except OSError as exc:
            m.SINK_WRITE_ERRORS.labels("summary").inc()
            self.rlog.warning("summary", "sink: cannot write summary: %s", exc)

    def housekeeping(self) -> None:
        super().housekeeping()
        self.retention.maybe_sweep()

    def finished(self) -> bool:
        return bool(self.streams) and len(self.eos_done) >= len(self.streams) and not self.queue

    def teardown(self) -> None:
        self.write_summary()
        for writer in (self.results, self.events):
            if writer is not None:
                writer.close()
        if self.video is not None:
            self.video.close_all()
        if self.pub is not None:
            self.pub.close(0)
        self.preview.close()
        self.store.close()
        if self.fanout is not None:
            self.fanout.close()


def _is_rgb(data: object) -> bool:
    return isinstance(data, np.ndarray) and data.ndim == 3 and data.shape[2] == 3 and data.dtype == np.uint8


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, bytes | bytearray | memoryview):
        return None
    return str(o)
