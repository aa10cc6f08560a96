"""Logging for things a peer can make happen at any rate (rejections, failing writes)."""

from __future__ import annotations

import collections
import logging
import time


class RateLimitedLog:
    """Logs the first occurrence of a key, then at most once per ``every_s`` with a count."""

    def __init__(self, logger: logging.Logger, every_s: float = 10.0):
        self.log, self.every_s = logger, every_s
        self.last: dict[str, float] = {}
        self.suppressed: collections.Counter[str] = collections.Counter()

    def warning(self, key: str, msg: str, *args: object) -> None:
        self._emit(logging.WARNING, key, msg, args, False)

    def exception(self, key: str, msg: str, *args: object) -> None:
        """An error with its traceback (rate-limited like the rest)."""
        self._emit(logging.ERROR, key, msg, args, True)

    def _emit(self, level: int, key: str, msg: str, args: tuple[object, ...], exc_info: bool) -> None:
        now = time.monotonic()
        if now - self.last.get(key, -1e9) >= self.every_s:
            extra = f" ({self.suppressed[key]} similar suppressed)" if self.suppressed[key] else ""
            self.log.log(level, msg + extra, *args, exc_info=exc_info)
            self.last[key] = now
            self.suppressed[key] = 0
        else:
            self.suppressed[key] += 1
