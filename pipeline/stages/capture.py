"""Capture stage: one reader thread per source, frames stamped at capture and sent to preprocess.

Live sources use a latest-frame buffer (oldest dropped and counted as ``stale``); lossless sources block
their reader when the buffer is full, so a file is never read faster than the pipeline can take it. While
preprocess uses few of the live frames it gets, live sources skip their non-reference frames
(sources/decode_pace.py).
"""

from __future__ import annotations

import threading
import time

from .. import metrics as m
from ..config import PipelineConfig
from ..records import LOSSLESS, MAX_ERROR, MAX_FILE_NAME, ItemMeta
from ..sources import open_source
from ..sources.base import Source, SourceFrame
from ..sources.config import SourceConfig
from ..sources.decode_pace import DecodePace
from ..sources.frame_buffer import FrameBuffer
from ..sources.uri import mask_uri, redact
from ..wire import MSG_FRAME, Item
from .base import Stage
from .books import DropBooks
from .inlet import Inlet
from .outlet import Outlet

_END = object()


def _printable(name: str | None) -> str | None:
    """A file name as it may travel (printable, bounded): odd bytes escaped as Python's ascii() does."""
    if name is None or (name.isprintable() and len(name) <= MAX_FILE_NAME):
        return name
    return ascii(name)[1:-1][:MAX_FILE_NAME]


class StreamBuffer:
    """One source's frames on their way to the send loop (a :class:`FrameBuffer`: latest-frame or lossless),
    with what the loop needs besides: frames dropped as stale since it last looked, the end, the error."""

    def __init__(self, cfg: SourceConfig, wake: threading.Event | None = None):
        self.cfg = cfg
        self.wake = wake or threading.Event()  # set on every put: the send loop sleeps until then
        self.lossless = cfg.policy == LOSSLESS
        self.frames: FrameBuffer[SourceFrame | object] = FrameBuffer(
            cfg.queue_size, drop_oldest=not self.lossless, on_drop=self._dropped
        )
        self.lock = threading.Lock()
        self.stale = 0
        self.ended = False
        self.error = ""

    def _dropped(self) -> None:
        with self.lock:
            self.stale += 1

    def put(self, frame: SourceFrame | object, stop: threading.Event) -> None:
        self.frames.put(frame, stop)
        self.wake.set()

    def get(self) -> SourceFrame | object | None:
        return self.frames.get(0)

    def take_stale(self) -> int:
        with self.lock:
            n, self.stale = self.stale, 0
        return n


class CaptureStage(Stage):
    name = "capture"

    def __init__(self, cfg: PipelineConfig, outlet: Outlet | None = None, *, inlet: Inlet | None = None,
                 books: DropBooks | None = None):
        super().__init__(cfg, outlet, inlet=inlet, books=books)
        self.wake = threading.Event()
        self.buffers = {s.id: StreamBuffer(s, self.wake) for s in cfg.sources}
        self.sources: dict[str, Source] = {}
        self.threads: list[threading.Thread] = []
        self.seq = dict.fromkeys(self.buffers, 0)
        self.epoch = time.time_ns()
        self.last_index: dict[str, int] = {}
        self.pace = DecodePace()
        self.paced_at = 0.0

    def reader(self, scfg: SourceConfig) -> None:
        buf = self.buffers[scfg.id]
        try:
            src = open_source(scfg)
            self.sources[scfg.id] = src
            for frame in src.frames():
                if self.stop_event.is_set():
                    break
                buf.put(frame, self.stop_event)
        except Exception as exc:  # noqa: BLE001 - a broken source ends its stream, never the stage
            buf.error = redact(f"{type(exc).__name__}: {exc}", scfg.uri)  # errors travel on: no credentials
            self.log.error("capture: source %s (%s) failed: %s", scfg.id, mask_uri(scfg.uri), buf.error)
        finally:
            buf.put(_END, self.stop_event)

    def setup(self) -> None:
        for scfg in self.cfg.sources:
            t = threading.Thread(target=self.reader, args=(scfg,), name=f"source-{scfg.id}", daemon=True)
            t.start()
            self.threads.append(t)

    def loop(self) -> None:
        while not self.stop_event.is_set():
            sent_any = held = False
            self.wake.clear()  # a frame put from here on ends the wait below at once
            for sid, buf in self.buffers.items():
                if buf.ended:
                    continue
                stale = buf.take_stale()
                if stale:
                    self.drop_books.count(sid, "stale", stale)
                    self.seq[sid] += stale
                if not buf.lossless and self.outlet is not None and not self.outlet.has_credit():
                    held = held or len(buf.frames) > 0
                    continue  # the frame stays in the latest-frame buffer, where a newer one replaces it
                frame = buf.get()
                if frame is None:
                    continue
                sent_any = True
                if frame is _END:
                    buf.ended = True
                    self.end_stream(sid, buf)
                    continue
                self.send_frame(sid, buf, frame)
            if self.outlet is not None:
                self.outlet.poll_monitor()
                self.pace_decoding()
            self.housekeeping()
            if self.finished():
                break
            if not sent_any:
                # Until a source puts a frame; a frame held for credit looks again soon (the reader frees it).
                self.wake.wait(0.002 if held and self.finished_at is None else 0.05)

    def pace_decoding(self) -> None:
        """Every 0.2 s: from what preprocess did with the live frames (used or dropped as stale), tell the
        live sources whether to skip their non-reference frames."""
        now = time.monotonic()
        if now - self.paced_at < 0.2 or self.outlet is None or self.outlet.encoder is None:
            return
        self.paced_at = now
        if self.pace.update(*self.outlet.encoder.fates()):
            for src in list(self.sources.values()):
                src.skip_nonref(self.pace.skip)

    def send_frame(self, sid: str, buf: StreamBuffer, frame: SourceFrame) -> None:
        last = self.last_index.get(sid)
        self.last_index[sid] = frame.index
        if last is not None and frame.index > last + 1:
            # The source itself skipped frames (a live camera whose reader fell behind): count them.
            gap = frame.index - last - 1
            self.drop_books.count(sid, "source_behind", gap)
            self.seq[sid] += gap
        seq = self.seq[sid]
        self.seq[sid] += 1
        m.FRAMES_IN.labels(self.name, sid).inc()
        src = self.sources.get(sid)
        meta = ItemMeta(policy=buf.cfg.policy, epoch=self.epoch, stills=True if buf.cfg.stills else None,
                        file=_printable(frame.name), frames_expected=src.expected_frames if src is not None else None)
        it = Item(sid, seq, frame.wall_ns, frame.mono_ns, [[self.name, frame.wall_ns, 0]], meta=meta)
        assert self.outlet is not None
        self.outlet.attach(it, frame.image)
        self.outlet.send_items(MSG_FRAME, [it])

    def end_stream(self, sid: str, buf: StreamBuffer) -> None:
        meta = ItemMeta(epoch=self.epoch, frames_total=self.seq[sid], error=buf.error[:MAX_ERROR] or None)
        now = time.time_ns()
        it = Item(sid, self.seq[sid], now, time.monotonic_ns(), meta=meta)
        self.eos_done[sid] = it
        self.log.info("capture: stream %s ended after %d frames", sid, self.seq[sid])
        self.forward_eos(it)

    def drain(self) -> None:
        """Nothing queued here is worth waiting for: stop the readers."""
        self.close_sources()

    def close_sources(self) -> None:
        for src in list(self.sources.values()):
            try:
                src.close()
            except Exception:  # noqa: BLE001 - a source failing to close must not block shutdown
                pass

    def teardown(self) -> None:
        self.close_sources()
        for t in self.threads:
            t.join(timeout=1.0)
