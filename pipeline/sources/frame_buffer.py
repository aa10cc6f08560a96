"""A bounded hand-off between a live source's reader thread and its consumer."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class FrameBuffer(Generic[T]):
    """At most ``size`` items. ``drop_oldest`` (latest-frame policy): a full buffer drops its oldest item
    and calls ``on_drop``; otherwise (lossless) the producer waits for room. Never grows without bound."""

    def __init__(self, size: int, drop_oldest: bool, on_drop: Callable[[], None] = lambda: None) -> None:
        self._items: deque[T] = deque()
        self._size = size
        self._drop_oldest = drop_oldest
        self._on_drop = on_drop
        self._cond = threading.Condition()
        self.finished = False

    def put(self, item: T, cancel: threading.Event) -> bool:
        """Add ``item``; False if the buffer finished or ``cancel`` was set while waiting for room."""
        with self._cond:
            while len(self._items) >= self._size:
                if self._drop_oldest:
                    self._items.popleft()
                    self._on_drop()
                elif self.finished or cancel.is_set():
                    return False
                else:
                    self._cond.wait(0.1)
            if self.finished:
                return False
            self._items.append(item)
            self._cond.notify_all()
            return True

    def get(self, timeout: float) -> T | None:
        """The oldest item, or None after ``timeout`` seconds or once finished."""
        with self._cond:
            if not self._items and not self.finished:
                self._cond.wait(timeout)
            if self._items and not self.finished:
                item = self._items.popleft()
                self._cond.notify_all()
                return item
            return None

    def finish(self) -> None:
        with self._cond:
            self.finished = True
            self._items.clear()
            self._cond.notify_all()

    def __len__(self) -> int:
        return len(self._items)
