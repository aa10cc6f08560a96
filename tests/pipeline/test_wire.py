"""Wire protocol: round trips, every rejection reason, and fuzzing (never a crash, only WireError)."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facestream.pipeline.codec import PayloadDecoder, PayloadEncoder
from facestream.pipeline.records import ItemMeta
from facestream.pipeline.wire import (
    MSG_BATCH,
    MSG_EOS,
    MSG_FRAME,
    Item,
    Message,
    WireError,
    decode,
    encode,
    raw_payload,
)


def _frame(seq: int = 3, shape=(4, 5, 3)) -> tuple[Message, np.ndarray]:
    arr = (np.arange(np.prod(shape)) % 251).astype(np.uint8).reshape(shape)
    it = Item("cam-1", seq, 111, 222, [["capture", 1, 2]], raw_payload(arr), ItemMeta(policy="lossless"), [["x", "stale", 2]],
              arr)
    return Message(MSG_FRAME, [it], "capture", 5), arr


def _bytes(parts):
    return [bytes(p) if not isinstance(p, bytes) else p for p in parts]


def test_frame_round_trip_keeps_every_field_and_pixel():
    msg, arr = _frame()
    out = decode(_bytes(encode(msg)))
    it = out.items[0]
    assert (out.type, out.sender, out.sent_wall_ns) == (MSG_FRAME, "capture", 5)
    assert (it.stream, it.seq, it.wall_ns, it.mono_ns) == ("cam-1", 3, 111, 222)
    assert it.stages == [["capture", 1, 2]] and it.meta == ItemMeta(policy="lossless") and it.drops == [["x", "stale", 2]]
    np.testing.assert_array_equal(it.data, arr)


def test_batch_round_trip_with_mixed_payloads():
    items = []
    arrays = []
    for k in range(3):
        a = np.full((2, 3, 3), k, np.uint8)
        arrays.append(a)
        items.append(Item("s", k, 1, 1, payload=raw_payload(a), data=a))
    items.append(Item("s", 3, 1, 1))  # no payload
    out = decode(_bytes(encode(Message(MSG_BATCH, items, "pre"))))
    assert [it.seq for it in out.items] == [0, 1, 2, 3]
    for a, it in zip(arrays, out.items, strict=False):
        np.testing.assert_array_equal(it.data, a)
    assert out.items[3].data is None


def test_jpeg_payload_round_trip_and_shape_check():
    enc, dec = PayloadEncoder("jpeg", 95), PayloadDecoder()
    img = np.zeros((48, 64, 3), np.uint8)
    img[10:30, 10:40] = 200
    it = Item("cam", 0, 1, 1)
    enc.attach(it, img)
    out = decode(_bytes(encode(Message(MSG_FRAME, [it], "c"))))
    got = dec.array(out.items[0])
    assert got.shape == img.shape and np.abs(got.astype(int) - img).mean() < 3
    # A JPEG whose real size differs from the header is refused.
    it2 = Item("cam", 1, 1, 1)
    enc.attach(it2, img)
    it2.payload.shape = (48, 65, 3)
    out2 = decode(_bytes(encode(Message(MSG_FRAME, [it2], "c"))))
    with pytest.raises(WireError) as e:
        dec.array(out2.items[0])
    assert e.value.reason == "bad_shape"


def test_shared_memory_payload_round_trip_and_overrun_detection():
    from facestream.pipeline.shm import ShmOverrun

    enc, dec = PayloadEncoder("shm", shm_prefix="test", shm_slots=2), PayloadDecoder()
    try:
        frames = [np.full((8, 8, 3), k, np.uint8) for k in range(3)]
        items = []
        for k, f in enumerate(frames):
            it = Item("cam", k, 1, 1)
            enc.attach(it, f)
            items.append(decode(_bytes(encode(Message(MSG_FRAME, [it], "c")))).items[0])
        # Slot 0 was lapped by frame 2 (two slots): frame 0 is an overrun, never torn data.
        with pytest.raises(ShmOverrun):
            dec.array(items[0])
        np.testing.assert_array_equal(dec.array(items[1]), frames[1])
        np.testing.assert_array_equal(dec.array(items[2]), frames[2])
    finally:
        enc.close()
        dec.close()


def test_lossless_shared_memory_writer_waits_for_the_reader():
    import threading
    import time

    from facestream.pipeline.shm import ShmReader, ShmWriter

    w, r = ShmWriter("waittest", slots=1, wait_timeout_s=5), ShmReader()
    try:
        a = np.ones((4, 4), np.uint8)
        d0 = w.write(a)
        done = threading.Event()

        def second():
            w.write(a * 2, wait=True)
            done.set()

        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.2)
        assert not done.is_set(), "writer must wait while the only slot is unread"
        np.testing.assert_array_equal(r.read(d0, (4, 4), np.dtype(np.uint8)), a)
        t.join(2)
        assert done.is_set()
    finally:
        w.close()
        r.close()


def _hdr(**over):
    h = {"v": 1, "t": "frame", "from": "x", "sent": 0,
         "items": [{"stream": "cam", "seq": 0, "ts": [1, 1], "payload": {"enc": "none"}}]}
    h.update(over)
    return h


@pytest.mark.parametrize(
    ("parts", "reason"),
    [
        ([], "no_parts"),
        ([b"\xc1"], "bad_header"),
        ([msgpack.packb([1, 2])], "bad_header"),
        ([msgpack.packb(_hdr(v=2))], "bad_version"),
        ([msgpack.packb(_hdr(t="bogus"))], "bad_type"),
        ([msgpack.packb(_hdr(items=[]))], "bad_field"),
        ([msgpack.packb(_hdr(items=[{"stream": "a b", "seq": 0, "ts": [1, 1]}]))], "bad_stream_id"),
        ([msgpack.packb(_hdr(items=[{"stream": "a", "seq": -1, "ts": [1, 1]}]))], "bad_field"),
        ([msgpack.packb(_hdr(items=[{"stream": "a", "seq": True, "ts": [1, 1]}]))], "bad_field"),
        ([msgpack.packb(_hdr(items=[{"stream": "a", "ts": [1, 1]}]))], "missing_field"),
        ([msgpack.packb(_hdr(items=[{"stream": "a", "seq": 1, "ts": [1, 1],
                                     "payload": {"enc": "raw", "shape": [-3, 4], "dtype": "uint8", "nbytes": 1}}]))],
         "bad_shape"),
        ([msgpack.packb(_hdr(items=[{"stream": "a", "seq": 1, "ts": [1, 1],
                                     "payload": {"enc": "raw", "shape": [16000, 16000, 4], "dtype": "float32",
                                                 "nbytes": 4}}]))], "oversized"),
        ([msgpack.packb(_hdr(items=[{"stream": "a", "seq": 1, "ts": [1, 1],
                                     "payload": {"enc": "raw", "shape": [2, 2], "dtype": "object", "nbytes": 4}}]))],
         "bad_dtype"),
        ([msgpack.packb(_hdr(items=[{"stream": "a", "seq": 1, "ts": [1, 1],
                                     "payload": {"enc": "raw", "shape": [2, 2], "dtype": "uint8", "nbytes": 5}}])),
          b"xxxxx"], "bad_size"),
        ([msgpack.packb(_hdr(items=[{"stream": "a", "seq": 1, "ts": [1, 1],
                                     "payload": {"enc": "raw", "shape": [2, 2], "dtype": "uint8", "nbytes": 4}}])),
          b"xx"], "truncated"),
        ([msgpack.packb(_hdr(items=[{"stream": "a", "seq": 1, "ts": [1, 1],
                                     "payload": {"enc": "raw", "shape": [2, 2], "dtype": "uint8", "nbytes": 4}}]))],
         "part_count"),
        ([msgpack.packb(_hdr()), b"extra"], "part_count"),
        ([msgpack.packb(_hdr(items=[{"stream": "a", "seq": 1, "ts": [1, 1], "payload": {"enc": "zstd"}}]))],
         "bad_encoding"),
        ([msgpack.packb(_hdr(t=MSG_EOS, items=[{"stream": "a", "seq": 1, "ts": [1, 1]}] * 2))], "bad_field"),
        ([b"\x00" * 10] * 300, "too_many_parts"),
        ([msgpack.packb(_hdr(items=[{"stream": "cam\n", "seq": 0, "ts": [1, 1]}]))], "bad_stream_id"),
        ([msgpack.packb(_hdr(items=[{"stream": "a", "seq": 0, "ts": [1, 1], "stages": [[{}, 1, 2]]}]))], "bad_field"),
        ([msgpack.packb(_hdr(items=[{"stream": "a", "seq": 0, "ts": [1, 1], "stages": [["x", -1, 2]]}]))],
         "bad_field"),
        ([msgpack.packb(_hdr(items=[{"stream": "a", "seq": 0, "ts": [1, 1], "drops": [["a/b", "stale", 1]]}]))],
         "bad_field"),
        ([msgpack.packb(_hdr(items=[{"stream": "a", "seq": 0, "ts": [1, 1], "drops": [["x", "y", 1]] * 65}]))],
         "bad_field"),
        ([msgpack.packb(_hdr(**{"from": "x" * 33}))], "bad_field"),
        ([msgpack.packb(_hdr(items=[{"stream": "a", "seq": 0, "ts": [1, 1], "meta": [1]}]))], "bad_meta"),
        ([msgpack.packb(_hdr(items=[{"stream": "a", "seq": 0, "ts": [1, 1], "meta": {"scale": float("nan")}}]))],
         "bad_meta"),
        ([msgpack.packb(_hdr(items=[{"stream": "a", "seq": 0, "ts": [1, 1], "meta": {"faces": [{}]}}]))], "bad_face"),
        ([msgpack.packb(_hdr(items=[{"stream": "a", "seq": 0, "ts": [1, 1], "meta": {"events": [7]}}]))], "bad_event"),
    ],
)
def test_each_violation_is_rejected_with_its_reason(parts, reason):
    with pytest.raises(WireError) as e:
        decode(parts)
    assert e.value.reason == reason


def test_declared_size_is_checked_against_the_limit_before_any_allocation():
    h = _hdr(items=[{"stream": "a", "seq": 1, "ts": [1, 1],
                     "payload": {"enc": "raw", "shape": [1000, 1000, 3], "dtype": "uint8", "nbytes": 3_000_000}}])
    with pytest.raises(WireError) as e:
        decode([msgpack.packb(h), b"x"], max_payload=1_000_000)
    assert e.value.reason == "oversized"


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=200), min_size=0, max_size=6))
def test_fuzz_random_bytes_only_ever_raise_wire_error(parts):
    try:
        decode(parts)
    except WireError:
        pass


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    header=st.fixed_dictionaries(
        {"v": st.sampled_from([1, 1, 1, 0, 2, "1", None]), "t": st.sampled_from(["frame", "batch", "eos", "hb", "x"])},
        optional={"items": st.lists(
            st.fixed_dictionaries({}, optional={
                "stream": st.sampled_from(["cam", "", "a" * 200, 5]),
                "seq": st.integers(-5, 2**64) | _json,
                "ts": st.lists(st.integers(-1, 2**63), max_size=3) | _json,
                "payload": st.fixed_dictionaries({}, optional={
                    "enc": st.sampled_from(["raw", "jpeg", "shm", "none", "?"]),
                    "shape": st.lists(st.integers(-2, 2**40), max_size=5) | _json,
                    "dtype": st.sampled_from(["uint8", "float32", "float64", "object", ""]),
                    "nbytes": st.integers(-1, 2**62) | _json,
                    "shm": _json,
                }),
                "meta": _json,
                "drops": _json,
            }), max_size=3)},
    ),
    extra_parts=st.lists(st.binary(max_size=64), max_size=3),
)
def test_fuzz_structured_headers_only_ever_raise_wire_error(header, extra_parts):
    try:
        packed = msgpack.packb(header, use_bin_type=True)
    except (OverflowError, TypeError, ValueError):
        return
    try:
        msg = decode([packed, *extra_parts])
    except WireError:
        return
    # Whatever passed validation is self-consistent: every raw payload matches its declared shape.
    for it in msg.items:
        if it.payload.encoding == "raw":
            assert it.data.shape == it.payload.shape
