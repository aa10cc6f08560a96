"""Turning arrays into payloads and back: raw (zero-copy), JPEG (across hosts) or shared memory (same host)."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from .image_header import declared_size
from .shm import ShmReader, ShmWriter
from .wire import DTYPES, ENC_JPEG, ENC_NONE, ENC_RAW, ENC_SHM, Item, Payload, WireError, raw_payload


class PayloadEncoder:
    """Encodes item pixels for one outgoing hop, as the hop's config says."""

    def __init__(self, encoding: str = ENC_RAW, jpeg_quality: int = 90, shm_prefix: str = "", shm_slots: int = 16):
        self.encoding = encoding
        self.jpeg_quality = jpeg_quality
        self.shm = ShmWriter(shm_prefix or "hop", shm_slots) if encoding == ENC_SHM else None

    def attach(self, item: Item, array: np.ndarray | None, wait: bool = False,
               should_stop: Callable[[], bool] | None = None) -> None:
        """Set the item's payload; ``wait`` (lossless) lets a shared-memory ring wait for a free slot."""
        if array is None:
            item.payload, item.data = Payload(), None
            return
        if self.encoding == ENC_JPEG and array.dtype == np.uint8 and array.ndim in (2, 3):
            ok, buf = cv2.imencode(".jpg", array, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            if not ok:
                raise RuntimeError("JPEG encoding failed")
            item.payload = Payload(ENC_JPEG, tuple(array.shape), "uint8", int(buf.nbytes))
            item.data = buf  # wire.encode sends the array as it is
        elif self.shm is not None:
            desc = self.shm.write(array, wait, should_stop)
            item.payload = Payload(ENC_SHM, tuple(array.shape), str(array.dtype), int(array.nbytes), desc)
            item.data = None
        else:
            item.payload = raw_payload(array)
            item.data = array

    def set_reader_hooks(self, reader_gone: Callable[[], bool], while_waiting: Callable[[], None]) -> None:
        """A lossless shared-memory hop waits for its reader as long as ``reader_gone()`` is False."""
        if self.shm is not None:
            self.shm.reader_gone, self.shm.while_waiting = reader_gone, while_waiting

    def unsent(self, item: Item) -> None:
        """The item's message was not delivered: give back the ring slot its pixels took."""
        if self.shm is not None and item.payload.encoding == ENC_SHM and item.payload.shm:
            self.shm.forget(item.payload.shm)

    def backlog(self) -> int | None:
        """Frames sent on this hop that the reader has not taken yet; None where the encoding cannot tell."""
        return self.shm.unread() if self.shm is not None else None

    def fates(self) -> tuple[int, int]:
        """(live frames the reader used, dropped unused) since the last call; (0, 0) where it cannot tell."""
        return self.shm.fates() if self.shm is not None else (0, 0)

    def reader_left(self) -> int:
        """The hop's reader disconnected: release the ring slots it will never read."""
        return self.shm.abandon_unread() if self.shm is not None else 0

    def close(self) -> None:
        if self.shm is not None:
            self.shm.close()


class PayloadDecoder:
    """Decodes any payload encoding into an array; a mismatch with the header is a :class:`WireError`."""

    def __init__(self) -> None:
        self.shm = ShmReader()

    def array(self, item: Item) -> np.ndarray | None:
        p = item.payload
        if p.encoding == ENC_NONE:
            return None
        if p.encoding == ENC_RAW:
            return item.data  # already a view checked against the header by wire.decode
        if p.encoding == ENC_JPEG:
            # The JPEG's own header is checked against the wire header before decoding: a small JPEG can
            # declare a gigapixel frame, and decoding it would allocate that much.
            declared = declared_size(item.data)
            if declared is None:
                raise WireError("bad_jpeg", f"{item.stream}/{item.seq}: no JPEG frame header")
            if (declared[1], declared[0]) != tuple(p.shape[:2]):
                raise WireError("bad_shape", f"jpeg declares {declared[0]}x{declared[1]}, header says {p.shape}")
            flags = cv2.IMREAD_COLOR if len(p.shape) == 3 else cv2.IMREAD_GRAYSCALE
            img = cv2.imdecode(np.frombuffer(item.data, np.uint8), flags)
            if img is None:
                raise WireError("bad_jpeg", f"{item.stream}/{item.seq}")
            if tuple(img.shape) != tuple(p.shape):
                raise WireError("bad_shape", f"jpeg decodes to {img.shape}, header says {p.shape}")
            return img
        if p.encoding == ENC_SHM:
            try:
                return self.shm.read(p.shm or {}, p.shape, np.dtype(DTYPES[p.dtype]))
            except (ValueError, TypeError, KeyError) as exc:
                raise WireError("bad_shm", str(exc)[:80]) from None
        raise WireError("bad_encoding", p.encoding)

    def note(self, item: Item, used: bool) -> None:
        """A live item read from shared memory was used (sent on) or dropped unused: its writer counts both."""
        if item.payload.encoding == ENC_SHM and item.payload.shm:
            self.shm.note(item.payload.shm, used)

    def release(self, item: Item) -> None:
        """An item dropped before its pixels were read gives its shared-memory slot back."""
        if item.payload.encoding == ENC_SHM:
            self.shm.release(item.payload.shm or {})

    def close(self) -> None:
        self.shm.close()
