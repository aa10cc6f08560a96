"""Erasing a person everywhere (``facestream gallery forget`` and ``DELETE /api/people/NAME``, one implementation).

The gallery's rows and recorded crop files go first (:meth:`Gallery.forget`), then the name is redacted from
the sink's JSON-lines outputs, and the person's rows in the events store go with the annotated frames they
point at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .output_files import forget_name_in_outputs, forget_name_in_store
from .recognition.gallery import Gallery


@dataclass
class Forgotten:
    crops: list[str] = field(default_factory=list)  # crop files the gallery recorded, deleted
    files: int = 0  # output files rewritten
    lines: int = 0  # lines redacted in them
    events: int = 0  # rows removed from the events store
    event_files: int = 0  # annotated frames of those events, deleted
    out_dir: Path | None = None  # None: no output folder, nothing redacted


def forget_everywhere(gallery: Gallery, name: str, out_dir: Path | None) -> Forgotten:
    """Erase ``name`` from the gallery and, when ``out_dir`` is a folder, from the outputs under it."""
    report = Forgotten(crops=gallery.forget(name))
    if out_dir is None or not Path(out_dir).is_dir():
        return report
    report.out_dir = Path(out_dir)
    report.files, report.lines = forget_name_in_outputs(report.out_dir, name)
    report.events, report.event_files = forget_name_in_store(report.out_dir, name)
    return report
