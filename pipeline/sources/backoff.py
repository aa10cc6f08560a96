"""Exponential reconnect delays with jitter, so a fleet of cameras does not retry in lock-step."""

from __future__ import annotations

import random


class Backoff:
    """``next_delay()`` gives min_s, 2*min_s, 4*min_s ... capped at max_s, each varied by +-jitter (a fraction)."""

    def __init__(self, min_s: float, max_s: float, jitter: float, rng: random.Random | None = None) -> None:
        self.min_s = min_s
        self.max_s = max_s
        self.jitter = jitter
        self.attempts = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        base = min(self.max_s, self.min_s * 2.0 ** min(self.attempts, 60))
        self.attempts += 1
        return max(0.0, base * (1.0 + self._rng.uniform(-self.jitter, self.jitter)))

    def reset(self) -> None:
        self.attempts = 0
