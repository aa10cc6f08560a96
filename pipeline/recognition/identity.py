"""Who a track is: one :class:`Identity` value, carried unchanged from the decision to results and events.

On the wire (event dicts, the sink's JSON lines) it is still five flat fields: ``identity`` (the label),
``name``, ``unknown_id``, ``score`` and ``confidence``; :meth:`Identity.fields` writes them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

WIRE_FIELDS = ("identity", "name", "unknown_id", "score", "confidence")


@dataclass(frozen=True)
class Identity:
    """A gallery name or an anonymous id, with the evidence of the decision that gave it."""

    label: str  # the name, "unknown#N", or "unknown" (no gallery to hand out anonymous ids)
    name: str | None = None  # set when the gallery knows the person
    unknown_id: int | None = None  # N of "unknown#N"
    score: float | None = None  # best gallery cosine of the decision
    confidence: float | None = None  # the temporal aggregator's confidence

    @property
    def known(self) -> bool:
        return self.name is not None

    def with_evidence(self, score: float, confidence: float) -> Identity:
        """The same identity, re-confirmed by a newer decision."""
        return replace(self, score=score, confidence=confidence)

    def fields(self) -> dict[str, Any]:
        return dict(zip(WIRE_FIELDS, (self.label, self.name, self.unknown_id, self.score, self.confidence),
                        strict=True))


def identity_fields(who: Identity | None) -> dict[str, Any]:
    """The five wire fields of ``who``; all None before any decision."""
    return who.fields() if who is not None else dict.fromkeys(WIRE_FIELDS)


class HasIdentity:
    """Read-only flat accessors (``identity``, ``name``, ...) for a record holding ``who: Identity | None``."""

    who: Identity | None

    @property
    def identity(self) -> str | None:
        """The label: a name, ``unknown#N``, or None (not decided yet)."""
        return self.who.label if self.who else None

    @property
    def name(self) -> str | None:
        return self.who.name if self.who else None

    @property
    def unknown_id(self) -> int | None:
        return self.who.unknown_id if self.who else None

    @property
    def score(self) -> float | None:
        return self.who.score if self.who else None

    @property
    def confidence(self) -> float | None:
        return self.who.confidence if self.who else None
