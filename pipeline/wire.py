"""The wire protocol between stages: multipart ZeroMQ messages, a versioned msgpack header, payload parts.

Part 0 is the header (msgpack map); parts 1..N are payloads, sent zero-copy. See docs/protocol.md.
Everything a peer sends is untrusted: :func:`decode` validates every field before anything is allocated
from it and raises :class:`WireError` with a short machine-readable reason on any violation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np

from .records import ItemMeta
from .wire_checks import NAME_RE, STREAM_ID_RE, WireError, check_int, check_text

VERSION = 1
MSG_FRAME = "frame"
MSG_BATCH = "batch"
MSG_RESULT = "result"
MSG_EOS = "eos"
MSG_HEARTBEAT = "hb"
MSG_TYPES = (MSG_FRAME, MSG_BATCH, MSG_RESULT, MSG_EOS, MSG_HEARTBEAT)

ENC_NONE = "none"
ENC_RAW = "raw"
ENC_JPEG = "jpeg"
ENC_SHM = "shm"
ENCODINGS = (ENC_NONE, ENC_RAW, ENC_JPEG, ENC_SHM)

DTYPES = {"uint8": np.uint8, "float32": np.float32, "float16": np.float16, "int32": np.int32}

MAX_HEADER_BYTES = 1 << 20
MAX_PAYLOAD_BYTES = 256 << 20
MAX_DIM = 16384
MAX_BATCH = 256
MAX_PARTS = MAX_BATCH + 1
MAX_STAGES = 16  # entries in an item's stage timestamps
MAX_DROPS = 64  # [stage, reason, count] entries carried by one item
MAX_DROP_COUNT = 1 << 40


@dataclass
class Payload:
    """How the pixels of one item travel. ``shape``/``dtype`` describe the decoded array."""

    encoding: str = ENC_NONE
    shape: tuple[int, ...] = ()
    dtype: str = "uint8"
    nbytes: int = 0
    shm: dict[str, Any] | None = None  # {"name", "slot", "gen", "offset"} for ENC_SHM

    def to_wire(self) -> dict[str, Any]:
        d: dict[str, Any] = {"enc": self.encoding, "shape": list(self.shape), "dtype": self.dtype, "nbytes": self.nbytes}
        if self.shm is not None:
            d["shm"] = self.shm
        return d


@dataclass
class Item:
    """One frame's metadata: stream, sequence, capture timestamps, stage timestamps, payload, stage data."""

    stream: str
    seq: int
    wall_ns: int = 0
    mono_ns: int = 0
    stages: list[list[Any]] = field(default_factory=list)  # [stage, in_wall_ns, out_wall_ns]
    payload: Payload = field(default_factory=Payload)
    meta: ItemMeta = field(default_factory=ItemMeta)  # stage data (records.py), validated on decode
    drops: list[list[Any]] = field(default_factory=list)  # [stage, reason, count] since the previous item
    data: np.ndarray | bytes | memoryview | None = None  # decoded array, or encoded bytes before sending

    def to_wire(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "stream": self.stream,
            "seq": self.seq,
            "ts": [self.wall_ns, self.mono_ns],
            "stages": self.stages,
            "payload": self.payload.to_wire(),
        }
        meta = self.meta.to_meta()
        if meta:
            d["meta"] = meta
        if self.drops:
            d["drops"] = self.drops
        return d


@dataclass
class Message:
    """A decoded message. Frames and results have one item; batches have several; eos/hb have one item
    without payload (the stream they concern; heartbeats use the sender's stage name as stream)."""

    type: str
    items: list[Item]
    sender: str = ""
    sent_wall_ns: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    run: str = ""  # the sending run's transport.run_id ("" = none): a receiver with one takes only its own


def encode(msg: Message) -> list[Any]:
    """Message -> list of frames for ``socket.send_multipart(copy=False)``. Payload arrays are not copied."""
    parts: list[Any] = []
    items = []
    for item in msg.items:
        items.append(item.to_wire())
        if item.payload.encoding in (ENC_RAW, ENC_JPEG):
            if item.data is None:
                raise ValueError(f"item {item.stream}/{item.seq} declares a {item.payload.encoding} payload but has no data")
            data = item.data
            if isinstance(data, np.ndarray):
                data = np.ascontiguousarray(data)
                if data.nbytes != item.payload.nbytes:
                    raise ValueError("payload nbytes does not match the array")
                data = memoryview(data).cast("B")
            parts.append(data)
    header = {"v": VERSION, "t": msg.type, "from": msg.sender, "sent": msg.sent_wall_ns, "items": items}
    if msg.extra:
        header["x"] = msg.extra
    if msg.run:
        header["run"] = msg.run
    return [msgpack.packb(header, use_bin_type=True), *parts]


def raw_payload(array: np.ndarray) -> Payload:
    return Payload(ENC_RAW, tuple(int(s) for s in array.shape), str(array.dtype), int(array.nbytes))


# --- decoding ------------------------------------------------------------------------------------------


def _req(d: dict, key: str, typ: type | tuple[type, ...], where: str) -> Any:
    if key not in d:
        raise WireError("missing_field", f"{where}.{key}")
    v = d[key]
    if typ is int and isinstance(v, bool) or not isinstance(v, typ):
        raise WireError("bad_field", f"{where}.{key} has type {type(v).__name__}")
    return v


def _int(d: dict, key: str, where: str, lo: int = 0, hi: int = (1 << 63) - 1) -> int:
    v = _req(d, key, int, where)
    if not lo <= v <= hi:
        raise WireError("bad_field", f"{where}.{key}={v} out of range")
    return v


def _payload(d: Any, where: str, max_payload: int) -> Payload:
    if not isinstance(d, dict):
        raise WireError("bad_field", f"{where}.payload is not a map")
    enc = _req(d, "enc", str, where)
    if enc not in ENCODINGS:
        raise WireError("bad_encoding", f"{where}: {enc!r}")
    if enc == ENC_NONE:
        return Payload()
    shape = _req(d, "shape", list, where)
    if not 1 <= len(shape) <= 4 or not all(isinstance(s, int) and not isinstance(s, bool) for s in shape):
        raise WireError("bad_shape", f"{where}: {shape!r}")
    if any(s < 1 or s > MAX_DIM for s in shape):
        raise WireError("bad_shape", f"{where}: dimension out of 1..{MAX_DIM}: {shape!r}")
    dtype = _req(d, "dtype", str, where)
    if dtype not in DTYPES:
        raise WireError("bad_dtype", f"{where}: {dtype!r}")
    expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(DTYPES[dtype]).itemsize
    if expected > max_payload:
        raise WireError("oversized", f"{where}: declared {expected} bytes > limit {max_payload}")
    nbytes = _int(d, "nbytes", where, 0, max_payload)
    if enc in (ENC_RAW, ENC_SHM) and nbytes != expected:
        raise WireError("bad_size", f"{where}: nbytes {nbytes} != shape x dtype {expected}")
    shm = None
    if enc == ENC_SHM:
        shm = d.get("shm")
        if not isinstance(shm, dict):
            raise WireError("missing_field", f"{where}.payload.shm")
        _req(shm, "name", str, where + ".shm")
        _int(shm, "slot", where + ".shm", 0, 1 << 16)
        _int(shm, "gen", where + ".shm")
    return Payload(enc, tuple(shape), dtype, nbytes, shm)


def _item(d: Any, where: str, max_payload: int) -> Item:
    if not isinstance(d, dict):
        raise WireError("bad_field", f"{where} is not a map")
    stream = _req(d, "stream", str, where)
    if not STREAM_ID_RE.fullmatch(stream):
        raise WireError("bad_stream_id", f"{where}: {stream[:40]!r}")
    seq = _int(d, "seq", where)
    ts = _req(d, "ts", list, where)
    if len(ts) != 2 or not all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in ts):
        raise WireError("bad_field", f"{where}.ts")
    stages = _stages(d.get("stages", []), where)
    drops = _drops(d.get("drops", []), where)
    meta = ItemMeta.from_meta(d.get("meta", {}), where + ".meta")
    return Item(stream, seq, ts[0], ts[1], stages, _payload(d.get("payload", {"enc": "none"}), where, max_payload),
                meta, drops)


def _triples(v: Any, what: str, max_len: int) -> list[list[Any]]:
    if not isinstance(v, list) or len(v) > max_len or not all(isinstance(x, list) and len(x) == 3 for x in v):
        raise WireError("bad_field", f"{what} is not a list of at most {max_len} triples")
    return v


def _stages(v: Any, where: str) -> list[list[Any]]:
    """[stage, in_ns, out_ns] entries: a stage name (a metric label and dict key) and two timestamps."""
    for s in _triples(v, where + ".stages", MAX_STAGES):
        check_text(s[0], where + ".stages name", "bad_field", 32, NAME_RE)
        check_int(s[1], where + ".stages in_ns", "bad_field")
        check_int(s[2], where + ".stages out_ns", "bad_field")
    return v


def _drops(v: Any, where: str) -> list[list[Any]]:
    """[stage, reason, count] entries: names that become metric labels and keys of the sink's books."""
    for x in _triples(v, where + ".drops", MAX_DROPS):
        check_text(x[0], where + ".drops stage", "bad_field", 32, NAME_RE)
        check_text(x[1], where + ".drops reason", "bad_field", 32, NAME_RE)
        check_int(x[2], where + ".drops count", "bad_field", 0, MAX_DROP_COUNT)
    return v


def decode(parts: list[Any], max_payload: int = MAX_PAYLOAD_BYTES) -> Message:
    """Validate and decode a multipart message. Raw payloads become numpy arrays viewing the received buffer;
    JPEG payloads are left as bytes (``item.data``) for :func:`facestream.pipeline.codec.decode_payload`."""
    if not parts:
        raise WireError("no_parts")
    if len(parts) > MAX_PARTS:
        raise WireError("too_many_parts", str(len(parts)))
    head = parts[0]
    head_bytes = head.bytes if hasattr(head, "bytes") else bytes(head)
    if len(head_bytes) > MAX_HEADER_BYTES:
        raise WireError("oversized", f"header of {len(head_bytes)} bytes")
    try:
        h = msgpack.unpackb(
            head_bytes, raw=False, strict_map_key=True,
            max_str_len=1 << 16, max_bin_len=1 << 16, max_array_len=4096, max_map_len=4096, max_ext_len=0,
        )
    except Exception as exc:  # msgpack raises many types on garbage
        raise WireError("bad_header", type(exc).__name__) from None
    if not isinstance(h, dict):
        raise WireError("bad_header", "not a map")
    v = h.get("v")
    if v != VERSION:
        raise WireError("bad_version", repr(v)[:20])
    mtype = _req(h, "t", str, "header")
    if mtype not in MSG_TYPES:
        raise WireError("bad_type", mtype[:20])
    raw_items = _req(h, "items", list, "header")
    if not 1 <= len(raw_items) <= MAX_BATCH:
        raise WireError("bad_field", f"header.items has {len(raw_items)} entries")
    if mtype != MSG_BATCH and len(raw_items) != 1:
        raise WireError("bad_field", f"a {mtype} message carries exactly one item")
    items = [_item(d, f"items[{i}]", max_payload) for i, d in enumerate(raw_items)]
    sender = h.get("from", "")
    sent = h.get("sent", 0)
    extra = h.get("x", {})
    if not isinstance(sender, str) or not isinstance(sent, int) or not isinstance(extra, dict):
        raise WireError("bad_field", "header.from/sent/x")
    if sender:  # the peer's name labels liveness metrics: bounded, no junk
        check_text(sender, "header.from", "bad_field", 32, NAME_RE)
    run = h.get("run", "")
    if run != "":
        check_text(run, "header.run", "bad_field", 32, NAME_RE)
    need = sum(1 for it in items if it.payload.encoding in (ENC_RAW, ENC_JPEG))
    if len(parts) - 1 != need:
        raise WireError("part_count", f"{len(parts) - 1} payload parts for {need} payloads")
    k = 1
    for it in items:
        if it.payload.encoding not in (ENC_RAW, ENC_JPEG):
            continue
        part = parts[k]
        k += 1
        buf = part.buffer if hasattr(part, "buffer") else memoryview(part)
        if it.payload.encoding == ENC_RAW:
            if buf.nbytes != it.payload.nbytes:
                raise WireError("truncated", f"payload has {buf.nbytes} bytes, header says {it.payload.nbytes}")
            it.data = np.frombuffer(buf, dtype=DTYPES[it.payload.dtype]).reshape(it.payload.shape)
        else:
            if buf.nbytes != it.payload.nbytes or buf.nbytes == 0:
                raise WireError("truncated", f"jpeg payload has {buf.nbytes} bytes, header says {it.payload.nbytes}")
            it.data = buf
    return Message(mtype, items, sender, sent, extra, run)
