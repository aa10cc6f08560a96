"""The wire's rejection (:class:`WireError`) and the bounded field checks shared by the message decoder
(:mod:`facestream.pipeline.wire`) and the stage records (:mod:`facestream.pipeline.records`).

Every check takes the value a peer sent and either returns it, typed, or raises ``WireError(reason)``;
nothing a peer sends is trusted to be the right type, size or range.
"""

from __future__ import annotations

import math
import re
from typing import Any

INT64_MAX = (1 << 63) - 1
STREAM_ID_RE = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")
NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,32}$")  # stage names, drop reasons: metric labels, dict keys
ID_RE = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")  # event ids, track refs: no path characters


class WireError(ValueError):
    """A message that breaks the protocol. ``reason`` is a short label used as a metric label."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def check_int(v: Any, what: str, reason: str, lo: int = 0, hi: int = INT64_MAX) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise WireError(reason, f"{what} has type {type(v).__name__}")
    if not lo <= v <= hi:
        raise WireError(reason, f"{what}={v} out of {lo}..{hi}")
    return v


def check_float(v: Any, what: str, reason: str, lo: float, hi: float) -> float:
    """A finite number (int or float, never bool) in ``lo..hi``; returned as float."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise WireError(reason, f"{what} has type {type(v).__name__}")
    f = float(v) if not isinstance(v, int) or abs(v) < 1 << 53 else math.inf
    if not math.isfinite(f) or not lo <= f <= hi:
        raise WireError(reason, f"{what}={str(v)[:24]} not a finite number in {lo:g}..{hi:g}")
    return f


def check_text(v: Any, what: str, reason: str, max_len: int, pattern: re.Pattern[str] | None = None,
               printable: bool = True) -> str:
    """A string of at most ``max_len`` characters: matching ``pattern`` if given, else printable."""
    if not isinstance(v, str):
        raise WireError(reason, f"{what} has type {type(v).__name__}")
    if len(v) > max_len:
        raise WireError(reason, f"{what} longer than {max_len} characters")
    if pattern is not None and not pattern.fullmatch(v) or pattern is None and printable and not v.isprintable():
        raise WireError(reason, f"{what}={v[:40]!r} has characters not allowed here")
    return v


def check_list(v: Any, what: str, reason: str, max_len: int) -> list[Any]:
    if not isinstance(v, list):
        raise WireError(reason, f"{what} is not a list")
    if len(v) > max_len:
        raise WireError(reason, f"{what} has {len(v)} entries (at most {max_len})")
    return v


def optional(check, v: Any, *args: Any, **kwargs: Any) -> Any:
    """``check(v, ...)``, or None when the peer sent null."""
    return None if v is None else check(v, *args, **kwargs)
