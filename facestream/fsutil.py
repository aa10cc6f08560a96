"""Files on disk, shared by engines and pipeline: atomic writes, private files, which files are images.

An atomic write goes to a uniquely named temporary file beside the target and is renamed over it, so a reader
(or a crash) sees the old content or the new one, never half a file; the temporary file is removed when the
write fails. ``private=True`` creates the file with mode 0600 from the start (no window in which others could
read it); otherwise the process umask applies, as for any new file. ``fsync=True`` also flushes the data to
disk before the rename (what a cache that must survive a power cut needs; off by default, it costs a disk
round trip per write).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

# Image files facestream reads from identity folders and photo sets (lower-case suffixes).
IMAGE_SUFFIXES = (".pgm", ".ppm", ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _new_file(path: Path, private: bool) -> int:
    """Open a new file for writing (O_EXCL: never an existing one), mode 0600 or 0666 less the umask."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o666)


@contextmanager
def atomic_open(path: Path | str, *, private: bool = False, fsync: bool = False) -> Iterator[BinaryIO]:
    """``with atomic_open(p) as f: f.write(...)``: a binary file that replaces ``p`` when the block succeeds."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    f = os.fdopen(_new_file(tmp, private), "wb")
    try:
        with f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: Path | str, data: bytes | str, *, private: bool = False, fsync: bool = False) -> None:
    """Replace ``path`` with ``data`` (str is written as UTF-8) in one rename."""
    with atomic_open(path, private=private, fsync=fsync) as f:
        f.write(data.encode() if isinstance(data, str) else data)


def create_private(path: Path | str) -> bool:
    """Create an empty file with mode 0600 unless ``path`` exists; True when it was created here."""
    try:
        os.close(_new_file(Path(path), private=True))
    except FileExistsError:
        return False
    return True
