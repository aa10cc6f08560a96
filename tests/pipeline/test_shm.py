"""The shared-memory ring gives credit back: a lossless writer never laps a frame its reader has not read."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from facestream.pipeline.shm import SHM_DIR, ShmOverrun, ShmReader, ShmWriter

U8 = np.dtype(np.uint8)


@pytest.fixture
def ring():
    w, r = ShmWriter(f"t{os.getpid()}", slots=1, wait_timeout_s=0.05), ShmReader()
    yield w, r
    w.close()
    r.close()


def test_a_slow_but_present_reader_is_waited_for_beyond_the_timeout(ring):
    w, r = ring
    w.reader_gone = lambda: False
    waited = []
    w.while_waiting = lambda: waited.append(time.monotonic())
    a = np.ones((4, 4), np.uint8)
    d0 = w.write(a)
    done = threading.Event()
    threading.Thread(target=lambda: (w.write(a * 2, wait=True), done.set()), daemon=True).start()
    time.sleep(0.5)  # ten times the timeout: the old ring overwrote the unread slot here
    assert not done.is_set()
    assert waited, "the stage's housekeeping runs while it waits"
    np.testing.assert_array_equal(r.read(d0, (4, 4), U8), a)
    assert done.wait(2)
    assert w.overwrites_unread == 0


def test_a_reader_that_is_gone_is_not_waited_for(ring):
    w, r = ring
    w.reader_gone = lambda: True
    d0 = w.write(np.ones((4, 4), np.uint8))
    w.write(np.zeros((4, 4), np.uint8), wait=True)
    assert w.overwrites_unread == 1
    with pytest.raises(ShmOverrun):
        r.read(d0, (4, 4), U8)


def test_growing_the_ring_keeps_unread_frames_until_they_are_read():
    w, r = ShmWriter(f"g{os.getpid()}", slots=2), ShmReader()
    try:
        small = np.full((100, 100, 3), 7, np.uint8)
        big = np.full((400, 300, 3), 9, np.uint8)  # larger than a slot: the ring moves to a new segment
        d_small = w.write(small, wait=True)
        d_big = w.write(big, wait=True)
        assert d_big["name"] != d_small["name"]
        # The old segment still exists: the small frame (never attached by the reader yet) is readable.
        np.testing.assert_array_equal(r.read(d_small, small.shape, U8), small)
        np.testing.assert_array_equal(r.read(d_big, big.shape, U8), big)
        w.write(big, wait=True)  # the next write removes the retired segment, now fully read
        assert not os.path.exists(os.path.join(SHM_DIR, d_small["name"]))
    finally:
        w.close()
        r.close()
    assert not os.path.exists(os.path.join(SHM_DIR, d_big["name"]))


def test_a_reader_that_left_frees_its_unread_slots_for_a_waiting_writer():
    """A restarted reader never reads what its predecessor queued: those slots must not hold the writer."""
    w = ShmWriter(f"a{os.getpid()}", slots=2)
    connected = [True]
    w.reader_gone = lambda: not connected[0]
    try:
        w.write(np.ones((4, 4), np.uint8))
        w.write(np.ones((4, 4), np.uint8))
        assert w.abandon_unread() == 2  # the reader was killed; a new one connects at once
        done = threading.Event()
        threading.Thread(target=lambda: (w.write(np.zeros((4, 4), np.uint8), wait=True), done.set()),
                         daemon=True).start()
        assert done.wait(2), "the writer waited for slots nobody will ever read"
    finally:
        w.close()


def test_a_frame_that_was_never_sent_does_not_count_as_unread():
    """A live send refused by a full or disconnected hop leaves its slot written: it must not eat credit."""
    w = ShmWriter(f"f{os.getpid()}", slots=4)
    try:
        d = w.write(np.ones((4, 4), np.uint8))
        w.write(np.ones((4, 4), np.uint8))
        assert w.unread() == 2
        w.forget(d)
        assert w.unread() == 1
    finally:
        w.close()


def test_the_writer_learns_which_live_frames_its_reader_used_and_which_it_dropped(ring):
    w, r = ring
    frame = np.zeros((4, 4, 3), np.uint8)
    descs = []
    for _ in range(3):
        descs.append(w.write(frame))
        r.read(descs[-1], frame.shape, frame.dtype)
    r.note(descs[0], used=True)
    r.note(descs[1], used=False)
    r.note(descs[2], used=False)
    assert w.fates() == (1, 2)
    assert w.fates() == (0, 0), "each call hands out what happened since the last"
    r.note({"name": "fs-not-attached", "slot": 0}, used=True)  # an unknown segment: ignored, no error
    assert w.fates() == (0, 0)
