"""Log a failure once, not once per retry: the first occurrence, every Nth repeat, and the recovery."""

from __future__ import annotations

import logging


class FailureLog:
    """Throttled warnings for one stream. ``failed(kind, msg)`` logs repeat 1, 1+every, 1+2*every ...;
    ``recovered(msg)`` logs once if anything failed since the last recovery, then starts afresh."""

    def __init__(self, logger: logging.Logger, stream_id: str, every: int = 20) -> None:
        self._log = logger
        self._stream = stream_id
        self._every = every
        self._counts: dict[str, int] = {}

    def failed(self, kind: str, msg: str, *args: object) -> None:
        count = self._counts.get(kind, 0) + 1
        self._counts[kind] = count
        if count == 1 or (count - 1) % self._every == 0:
            suffix = "" if count == 1 else f" (repeat {count}, logging every {self._every}th)"
            self._log.warning("stream %s: " + msg + suffix, self._stream, *args)

    def recovered(self, msg: str, *args: object) -> None:
        if self._counts:
            total = sum(self._counts.values())
            self._log.info("stream %s: " + msg + f" after {total} failure(s)", self._stream, *args)
            self._counts.clear()

    def count(self, kind: str) -> int:
        return self._counts.get(kind, 0)
