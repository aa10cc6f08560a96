"""Shared-memory frame ring for same-host hops: pixels go through shared memory, the header through ZeroMQ.

Measured here (docs/transport-measurements in the brief): a shared-memory ring moves 1080p frames at ~3x the
rate of ZeroMQ payloads. Each slot is a seqlock with a consumed mark:

- the writer stores an odd generation, copies the pixels, then the final (even) generation the header names;
- a reader checks the generation, copies the pixels out, checks it again (a torn or lapped read raises
  :class:`ShmOverrun`: the frame is counted as dropped, never delivered torn), then marks the slot consumed;
- before reusing a slot the writer waits (lossless hops) until it was consumed: for as long as the reader is
  there (``reader_gone``, from the hop's connection state) however slow it is, else up to ``wait_timeout_s``.
  Live hops never wait: an unread slot is overwritten and the late reader drops it.
- a frame larger than the slots moves the ring to a new, larger segment; the old one is *retired*, not
  removed, until every frame in it was read, so growing never loses the frames still in flight.

A segment ends with a trailer of two counters the reader keeps: live frames it read and then used (sent on)
and live frames it read and then dropped unused (a newer frame of the stream came first). The writer reads
them (:meth:`ShmWriter.fates`) to learn what the frames it decodes are worth: a live source whose frames are
mostly thrown away may skip decoding some (sources/decode_pace.py).

Segments are plain files in /dev/shm (mmap), named ``fs-<prefix>-<pid>-<random>``; the writer unlinks its
own on close, and removes those of dead processes with its prefix when it starts.
"""

from __future__ import annotations

import glob
import mmap
import os
import secrets
import time
from collections.abc import Callable

import numpy as np

SHM_DIR = "/dev/shm" if os.path.isdir("/dev/shm") else "/tmp"
SLOT_HEADER = 24  # gen (u64), nbytes (u64), consumed gen (u64)
TRAILER = 16  # live frames the reader used (u64), live frames it dropped unused (u64)


class ShmOverrun(RuntimeError):
    """The slot was overwritten (or its segment removed) before the reader got to it."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_segments(prefix: str) -> int:
    """Delete segments of ``prefix`` left behind by processes that no longer exist."""
    removed = 0
    for path in glob.glob(os.path.join(SHM_DIR, f"fs-{prefix}-*")):
        try:
            pid = int(os.path.basename(path).split("-")[2])
        except (IndexError, ValueError):
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            try:
                os.unlink(path)
                removed += 1
            except OSError:
                pass
    return removed


class _Segment:
    def __init__(self, path: str, size: int, create: bool):
        flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
        fd = os.open(path, flags, 0o600)
        try:
            if create:
                os.ftruncate(fd, size)
            else:
                size = os.fstat(fd).st_size
            self.mm = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        self.path, self.size = path, size
        self.buf = memoryview(self.mm)

    def close(self) -> None:
        try:
            self.buf.release()
            self.mm.close()
        except (BufferError, ValueError):
            pass


class ShmWriter:
    """A ring of ``slots`` slots, re-created (under a new name) when a frame does not fit."""

    def __init__(self, prefix: str, slots: int = 16, wait_timeout_s: float = 3.0):
        self.prefix = prefix
        self.slots = slots
        self.wait_timeout_s = wait_timeout_s
        self.slot_bytes = 0
        self.seg: _Segment | None = None
        self.retired: list[tuple[_Segment, int]] = []  # (segment, its slot_bytes) with frames still unread
        self.name = ""
        self.next_slot = 0
        self.gen = 0
        self.overwrites_unread = 0
        self._fates_seen = (0, 0)  # (used, dropped) of the current segment already handed out by fates()
        # Set by the stage that owns the hop: True once the reader is gone (disconnected), so a lossless wait
        # ends; called every ~100 ms of waiting (heartbeats: waiting on a slow reader is progress).
        self.reader_gone: Callable[[], bool] | None = None
        self.while_waiting: Callable[[], None] | None = None
        remove_stale_segments(prefix)

    def forget(self, desc: dict) -> None:
        """A frame written but never sent (the hop refused the message): its slot is free again."""
        for seg, slot_bytes in [*([(self.seg, self.slot_bytes)] if self.seg else []), *self.retired]:
            if seg.path.endswith(str(desc.get("name"))) and 0 <= int(desc.get("slot", -1)) < self.slots:
                hdr = self._slot_header(seg, slot_bytes, int(desc["slot"]))
                if int(hdr[0]) == int(desc.get("gen", -1)):
                    hdr[2] = hdr[0]
                return

    def unread(self) -> int:
        """Frames written to the current ring and not yet read: the reader's backlog on this hop."""
        return 0 if self.seg is None else self._unread(self.seg, self.slot_bytes)

    def abandon_unread(self) -> int:
        """The reader went away: frames it had not read are gone with it (its queue died), so their slots are
        free again. Returns how many were abandoned (the sink counts them as lost in flight)."""
        n = 0
        for seg, slot_bytes in [*self.retired, *([(self.seg, self.slot_bytes)] if self.seg else [])]:
            hdrs, unread = self._unread_slots(seg, slot_bytes)
            hdrs[unread, 2] = hdrs[unread, 0]
            n += int(np.count_nonzero(unread))
        return n

    def _slot_header(self, seg: _Segment, slot_bytes: int, slot: int) -> np.ndarray:
        return np.ndarray((3,), dtype=np.uint64, buffer=seg.buf, offset=slot * (SLOT_HEADER + slot_bytes))

    def _unread_slots(self, seg: _Segment, slot_bytes: int) -> tuple[np.ndarray, np.ndarray]:
        """Every slot's header of ``seg`` at once (a strided view: stages ask each time they look for credit),
        and which slots were written and not read yet."""
        hdrs = np.ndarray((self.slots, 3), np.uint64, buffer=seg.buf, strides=(SLOT_HEADER + slot_bytes, 8))
        return hdrs, (hdrs[:, 0] != 0) & (hdrs[:, 2] != hdrs[:, 0])

    def _unread(self, seg: _Segment, slot_bytes: int) -> int:
        return int(np.count_nonzero(self._unread_slots(seg, slot_bytes)[1]))

    def _release_retired(self) -> None:
        keep = []
        for seg, slot_bytes in self.retired:
            if self._unread(seg, slot_bytes):
                keep.append((seg, slot_bytes))
            else:
                _remove(seg)
        self.retired = keep

    def _alloc(self, nbytes: int) -> None:
        if self.seg is not None:
            if self._unread(self.seg, self.slot_bytes):
                self.retired.append((self.seg, self.slot_bytes))  # removed once its frames were read
            else:
                _remove(self.seg)
            self.seg = None
        self.next_slot = 0
        self.slot_bytes = max(nbytes, 1 << 16)
        self.name = f"fs-{self.prefix}-{os.getpid()}-{secrets.token_hex(4)}"
        size = self.slots * (SLOT_HEADER + self.slot_bytes) + TRAILER
        self.seg = _Segment(os.path.join(SHM_DIR, self.name), size, True)
        self._fates_seen = (0, 0)

    def fates(self) -> tuple[int, int]:
        """Live frames the reader used and dropped unused since the last call (current segment only)."""
        if self.seg is None:
            return 0, 0
        trailer = np.ndarray((2,), dtype=np.uint64, buffer=self.seg.buf, offset=self.seg.size - TRAILER)
        now = int(trailer[0]), int(trailer[1])
        seen, self._fates_seen = self._fates_seen, now
        return max(0, now[0] - seen[0]), max(0, now[1] - seen[1])

    def _header(self, slot: int) -> np.ndarray:
        assert self.seg is not None
        return self._slot_header(self.seg, self.slot_bytes, slot)

    def _wait_consumed(self, hdr: np.ndarray, should_stop: Callable[[], bool] | None) -> None:
        """Block while the slot holds an unread frame, the reader is there and the stage is not stopping."""
        start = last_hook = time.monotonic()
        while int(hdr[2]) != int(hdr[0]):
            now = time.monotonic()
            if should_stop is not None and should_stop():
                return
            if self.reader_gone is not None:
                if self.reader_gone():
                    return
            elif now - start > self.wait_timeout_s:
                return
            if self.while_waiting is not None and now - last_hook >= 0.1:
                last_hook = now
                self.while_waiting()
            # Yield for the first millisecond (the reader is usually a copy away), then sleep.
            time.sleep(0 if now - start < 0.001 else 0.0002 if now - start < 0.05 else 0.002)

    def write(self, array: np.ndarray, wait: bool = False, should_stop: Callable[[], bool] | None = None) -> dict:
        """Copy ``array`` into the next slot; returns the ``shm`` descriptor for the header.

        With ``wait`` the call blocks while the slot holds a frame nobody has read yet.
        """
        array = np.ascontiguousarray(array)
        if self.retired:
            self._release_retired()
        if self.seg is None or array.nbytes > self.slot_bytes:
            self._alloc(array.nbytes)
        slot = self.next_slot
        hdr = self._header(slot)
        if int(hdr[0]) != 0 and int(hdr[2]) != int(hdr[0]):
            if wait:
                self._wait_consumed(hdr, should_stop)
            if int(hdr[2]) != int(hdr[0]):
                self.overwrites_unread += 1
        self.next_slot = (slot + 1) % self.slots
        self.gen += 2
        hdr[0] = self.gen - 1  # odd: being written
        base = slot * (SLOT_HEADER + self.slot_bytes) + SLOT_HEADER
        assert self.seg is not None
        dst = np.ndarray(array.shape, dtype=array.dtype, buffer=self.seg.buf, offset=base)
        dst[...] = array
        hdr[1] = array.nbytes
        hdr[0] = self.gen
        return {"name": self.name, "slot": slot, "gen": self.gen, "slot_bytes": self.slot_bytes}

    def close(self) -> None:
        for seg, _ in self.retired:
            _remove(seg)
        self.retired = []
        if self.seg is not None:
            _remove(self.seg)
            self.seg = None


def _remove(seg: _Segment) -> None:
    seg.close()
    try:
        os.unlink(seg.path)
    except OSError:
        pass


class ShmReader:
    """Reads slots of rings written by peers on this host; keeps the last few segments mapped."""

    def __init__(self, max_attached: int = 8):
        self.max_attached = max_attached
        self.attached: dict[str, _Segment] = {}

    def read(self, desc: dict, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        seg, base, gen = self._locate(desc, int(np.prod(shape)) * np.dtype(dtype).itemsize)
        hdr = np.ndarray((3,), dtype=np.uint64, buffer=seg.buf, offset=base)
        if int(hdr[0]) != gen:
            raise ShmOverrun(f"slot {desc.get('slot')} overwritten")
        out = np.ndarray(shape, dtype=dtype, buffer=seg.buf, offset=base + SLOT_HEADER).copy()
        if int(hdr[0]) != gen:
            raise ShmOverrun(f"slot {desc.get('slot')} overwritten while reading")
        hdr[2] = gen
        return out

    def release(self, desc: dict) -> None:
        """Give a slot back unread (its message was rejected or dropped), so a waiting writer can go on."""
        try:
            seg, base, gen = self._locate(desc, 0)
        except (ShmOverrun, ValueError, TypeError, KeyError):
            return
        hdr = np.ndarray((3,), dtype=np.uint64, buffer=seg.buf, offset=base)
        if int(hdr[0]) == gen:
            hdr[2] = gen

    def note(self, desc: dict, used: bool) -> None:
        """What became of a live frame read from ``desc``'s segment: used (sent on) or dropped unused."""
        seg = self.attached.get(str(desc.get("name")))
        if seg is None or seg.size < TRAILER:
            return
        trailer = np.ndarray((2,), dtype=np.uint64, buffer=seg.buf, offset=seg.size - TRAILER)
        trailer[0 if used else 1] += 1

    def _locate(self, desc: dict, nbytes: int) -> tuple[_Segment, int, int]:
        """(segment, slot offset, generation) of a descriptor, checked against the segment's size."""
        name = desc.get("name")
        if not isinstance(name, str) or not name.startswith("fs-") or "/" in name or len(name) > 100:
            raise ValueError(f"bad shared-memory name {str(name)[:40]!r}")
        seg = self.attached.get(name)
        if seg is None:
            try:
                seg = _Segment(os.path.join(SHM_DIR, name), 0, False)
            except FileNotFoundError:
                raise ShmOverrun(f"segment {name} is gone (writer restarted)") from None
            if len(self.attached) >= self.max_attached:
                self.attached.pop(next(iter(self.attached))).close()
            self.attached[name] = seg
        slot_bytes = int(desc.get("slot_bytes", 0))
        slot = int(desc.get("slot", -1))
        base = slot * (SLOT_HEADER + slot_bytes)
        if slot < 0 or slot_bytes <= 0 or nbytes > slot_bytes or base + SLOT_HEADER + max(nbytes, 1) > seg.size - TRAILER:
            raise ValueError("shared-memory descriptor does not fit the segment")
        return seg, base, int(desc["gen"])

    def close(self) -> None:
        for seg in self.attached.values():
            seg.close()
        self.attached.clear()
