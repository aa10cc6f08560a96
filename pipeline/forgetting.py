"""Erasing a person everywhere (``facestream gallery forget`` and ``DELETE /api/people/NAME``, one implementation).

The gallery's rows and recorded crop files go first (:meth:`Gallery.forget`), then the name is redacted from
the sink's JSON-lines outputs, and the person's rows in the events store go with the crops and annotated
frames they point at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .events_store import EventQuery, EventsStore
from .output_files import forget_name_in_outputs
from .recognition.gallery import Gallery


@dataclass
class Forgotten:
    crops: list[str] = field(default_factory=list)  # crop files the gallery recorded, deleted
    files: int = 0  # output files rewritten
    lines: int = 0  # lines redacted in them
    events: int = 0  # rows removed from the events store
    event_files: int = 0  # best shots and annotated frames of those events, deleted
    out_dir: Path | None = None  # None: no output folder, nothing redacted


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root.resolve())
    except OSError:
        return False


def forget_in_events_store(out_dir: Path, name: str) -> tuple[int, int]:
    """Drop ``name``'s events from ``out_dir/events.db`` and delete their files under ``out_dir``: (rows, files)."""
    path = out_dir / "events.db"
    if not path.is_file():
        return 0, 0
    store = EventsStore(path)
    try:
        files = 0
        for event in store.query(EventQuery(person=name, limit=10_000_000)):
            for value in (event.get("frame"), event.get("best_shot_path")):
                if not isinstance(value, str) or not value:
                    continue
                p = Path(value) if Path(value).is_absolute() else out_dir / value
                if not p.is_file():
                    p = Path(value)  # a crop path as inference wrote it (relative to the run's folder)
                if p.is_file() and _inside(p, out_dir):
                    p.unlink(missing_ok=True)
                    files += 1
        return store.forget_person(name), files
    finally:
        store.close()


def forget_everywhere(gallery: Gallery, name: str, out_dir: Path | None) -> Forgotten:
    """Erase ``name`` from the gallery and, when ``out_dir`` is a folder, from the outputs under it."""
    report = Forgotten(crops=gallery.forget(name))
    if out_dir is None or not Path(out_dir).is_dir():
        return report
    report.out_dir = Path(out_dir)
    report.files, report.lines = forget_name_in_outputs(report.out_dir, name)
    report.events, report.event_files = forget_in_events_store(report.out_dir, name)
    return report
