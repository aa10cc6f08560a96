"""Sharded cameras: which inference host (shard) runs which stream, the same answer on every host.

Each stream goes to the shard with the highest rendezvous (HRW) score ``sha256(shard \\0 stream)``: no
coordination, no state, and adding or removing a shard moves only the streams that now score highest on
the new shard (about 1/N of them) while every other stream stays where its tracker state is. A source's
``shard:`` pins it explicitly. Capture, preprocess and inference of a shard run only its streams; the sink
takes every stream (docs/scaling.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from pydantic import Field, field_validator, model_validator

from .sections import Section

SHARDED_STAGES = ("capture", "preprocess", "inference")


class ShardConfig(Section):
    """This host's shard and every shard's id (all hosts list the same ``shards``)."""

    id: str = Field(default="", title="This host's shard; empty = no sharding (this host runs every stream)")
    shards: list[str] = Field(
        default_factory=list, title="Every shard id, the same list on every host; streams are spread over them"
    )

    @field_validator("shards")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        bad = [s for s in v if not s or len(s) > 32 or not all(c.isalnum() or c in "_-" for c in s)]
        if bad:
            raise ValueError(f"shard ids {bad} must be 1-32 letters, digits, _ or -")
        dup = sorted({s for s in v if v.count(s) > 1})
        if dup:
            raise ValueError(f"duplicate shard id(s): {', '.join(dup)}")
        return v

    @model_validator(mode="after")
    def _id_listed(self) -> ShardConfig:
        if self.id and self.id not in self.shards:
            raise ValueError(f"shard.id {self.id!r} is not in shard.shards {self.shards}")
        return self


def hrw_score(shard: str, stream: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{shard}\0{stream}".encode()).digest()[:8], "big")


def hrw_shard(stream: str, shards: Iterable[str]) -> str:
    """The shard that runs ``stream``: the highest score (ties, practically impossible, by shard id)."""
    return max(shards, key=lambda s: (hrw_score(s, stream), s))


def assign(streams: Iterable[tuple[str, str | None]], shards: list[str]) -> dict[str, str]:
    """stream id -> shard id for ``(stream, pinned shard or None)`` pairs."""
    return {sid: pinned or hrw_shard(sid, shards) for sid, pinned in streams}
