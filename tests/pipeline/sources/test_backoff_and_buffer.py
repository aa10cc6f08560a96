"""Reconnect backoff (exponential, capped, jittered) and the bounded reader-to-consumer buffer."""

from __future__ import annotations

import random
import threading

import pytest

from facestream.pipeline.sources.backoff import Backoff
from facestream.pipeline.sources.frame_buffer import FrameBuffer


def test_backoff_doubles_to_the_cap_and_resets():
    backoff = Backoff(0.5, 4.0, jitter=0.0)
    assert [backoff.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    backoff.reset()
    assert backoff.next_delay() == 0.5


def test_backoff_jitter_stays_within_fraction_and_varies():
    backoff = Backoff(1.0, 1.0, jitter=0.2, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(200)]
    assert min(delays) >= 0.8 and max(delays) <= 1.2
    assert len({round(d, 6) for d in delays}) > 100
    assert min(delays) < 0.85 and max(delays) > 1.15


def test_latest_buffer_drops_oldest_and_counts():
    dropped = []
    buffer = FrameBuffer(3, drop_oldest=True, on_drop=lambda: dropped.append(1))
    never = threading.Event()
    for i in range(10):
        assert buffer.put(i, never)
    assert len(dropped) == 7
    assert [buffer.get(0.01) for _ in range(3)] == [7, 8, 9]
    assert buffer.get(0.01) is None


def test_lossless_buffer_makes_producer_wait_and_cancel_frees_it():
    buffer = FrameBuffer(2, drop_oldest=False)
    cancel = threading.Event()
    buffer.put(1, cancel)
    buffer.put(2, cancel)
    results = []
    producer = threading.Thread(target=lambda: results.append(buffer.put(3, cancel)))
    producer.start()
    producer.join(0.3)
    assert producer.is_alive(), "a full lossless buffer must make the producer wait"
    assert buffer.get(0.1) == 1
    producer.join(1)
    assert results == [True]
    assert [buffer.get(0.1), buffer.get(0.1)] == [2, 3]
    buffer.put(4, cancel)
    buffer.put(5, cancel)
    blocked = threading.Thread(target=lambda: results.append(buffer.put(6, cancel)))
    blocked.start()
    cancel.set()
    blocked.join(1)
    assert results == [True, False]


@pytest.mark.parametrize("drop_oldest", [True, False])
def test_finish_wakes_a_waiting_consumer(drop_oldest):
    buffer = FrameBuffer(2, drop_oldest=drop_oldest)
    got = []
    consumer = threading.Thread(target=lambda: got.append(buffer.get(5.0)))
    consumer.start()
    buffer.finish()
    consumer.join(1)
    assert not consumer.is_alive() and got == [None]
