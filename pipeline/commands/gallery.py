"""``facestream gallery ...``: manage the people facestream recognises, their negative feedback and unknowns.

Photos given to ``add`` are detected, aligned, quality-checked and embedded (recognition/enrolment.py); a
photo that is not an image, is too large, has no face or several faces, or whose face is tiny, blurred or
turned away is refused with the reason. The gallery is ``--gallery``, else ``inference.gallery`` of
``--config FILE`` (or of a ``FACESTREAM__INFERENCE__GALLERY`` variable), else ``$FACESTREAM_GALLERY``, else
``~/.local/share/facestream/gallery.db``: a file, or a ``postgresql://`` URL for a gallery shared by several
hosts (docs/scaling.md). A running pipeline picks changes up within a second or so.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from facestream.engines.faces.detector_specs import DETECTOR_TYPES


def _gallery_location(text: str) -> Path | str:
    from facestream.pipeline.recognition.gallery_store import gallery_location

    return gallery_location(text) or Path(text)


def _gallery_arg() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--gallery",
        type=_gallery_location,
        default=None,
        help="gallery file or postgresql:// URL (default: inference.gallery of --config, else "
        "$FACESTREAM_GALLERY, else ~/.local/share/facestream/gallery.db)",
    )
    return parent


def register(subparsers: argparse._SubParsersAction) -> None:
    g = subparsers.add_parser("gallery", help="manage known people, negative feedback and unknown faces")
    sub = g.add_subparsers(dest="gallery_command", metavar="ACTION", required=True)
    common = _gallery_arg()

    p = sub.add_parser("add", parents=[common], help="enrol a person from one or more photos")
    p.add_argument("name")
    p.add_argument("photos", nargs="+", type=Path, metavar="PHOTO")
    p.add_argument("--detector", choices=DETECTOR_TYPES, default=None,
                   help="face detector (default: inference.detector of --config, else hog)")
    p.add_argument("--store", type=Path, default=None,
                   help="model store (default: inference.models_dir of --config, else $FACESTREAM_MODELS)")
    p.set_defaults(func=cmd_add)

    p = sub.add_parser("remove", parents=[common], help="remove a person and their embeddings")
    p.add_argument("name")
    p.set_defaults(func=cmd_remove)

    p = sub.add_parser("list", parents=[common], help="list people")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("rename", parents=[common], help="rename a person")
    p.add_argument("old")
    p.add_argument("new")
    p.set_defaults(func=cmd_rename)

    p = sub.add_parser(
        "export", parents=[common], help="write the gallery to a JSON file (embeddings in the clear)"
    )
    p.add_argument("file", type=Path)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("import", parents=[common], help="merge a JSON export into the gallery")
    p.add_argument("file", type=Path)
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("reject", parents=[common], help='negative feedback: "track or event X is not NAME"')
    p.add_argument(
        "ref", metavar="TRACK_OR_EVENT", help="a track_ref (t-...) or event_id (e-...) from an event"
    )
    p.add_argument("name")
    p.set_defaults(func=cmd_reject)

    p = sub.add_parser(
        "forget", parents=[common], help="erase a person: embeddings, sightings and crop files"
    )
    p.add_argument("name")
    p.add_argument("--out-dir", dest="out_dir", type=Path, default=None,
                   help="outputs to redact the name from (results.jsonl, events/); default: sink.out_dir of --config")
    p.set_defaults(func=cmd_forget)

    p = sub.add_parser("unknowns", parents=[common], help="list anonymous ids of unknown faces")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_unknowns)

    p = sub.add_parser("name-unknown", parents=[common], help="promote unknown#ID to a named person")
    p.add_argument("id", metavar="ID", help="e.g. 7 or unknown#7")
    p.add_argument("name")
    p.set_defaults(func=cmd_name_unknown)


def _open(args: argparse.Namespace, create: bool = False):
    from facestream.pipeline.recognition.gallery import Gallery

    return Gallery(args.gallery, create=create)


# -- add ---------------------------------------------------------------------------------------------------


def cmd_add(args: argparse.Namespace) -> int:
    from facestream.engines.store import ModelStore
    from facestream.pipeline.recognition.enrolment import PhotoEnroller, collect_items, store_items

    enroller = PhotoEnroller(args.detector or "hog", store=ModelStore(getattr(args, "store", None)))
    items, refused = collect_items(enroller, list(args.photos))
    for reason in refused:
        print(f"refused: {reason}", file=sys.stderr)
    added, total = store_items(args.gallery, args.name, items, len(refused))
    print(f"{args.name}: {added} photo(s) enrolled, {total} in the gallery, {len(refused)} refused")
    return 1 if refused else 0


# -- the rest ----------------------------------------------------------------------------------------------


def cmd_remove(args: argparse.Namespace) -> int:
    with _open(args) as g:
        g.remove(args.name)
    print(f"removed {args.name}")
    return 0


def _when(ns: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ns / 1e9)) if ns else "-"


def cmd_list(args: argparse.Namespace) -> int:
    with _open(args) as g:
        people = g.people()
        encrypted = g.encrypted
        path = g.path
    if args.json:
        print(json.dumps([vars(p) for p in people], indent=1))
        return 0
    print(f"{path}: {len(people)} people{' (encrypted)' if encrypted else ''}")
    for p in people:
        extra = f", {p.rejections} rejection(s)" if p.rejections else ""
        print(f"  {p.name}: {p.embeddings} embedding(s), since {_when(p.created_ns)}{extra}")
    return 0


def cmd_rename(args: argparse.Namespace) -> int:
    with _open(args) as g:
        g.rename(args.old, args.new)
    print(f"renamed {args.old} to {args.new}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    with _open(args) as g:
        n = g.export_json(args.file)
    print(f"exported {n} people to {args.file} (contains face embeddings in the clear; keep it private)")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    with _open(args, create=True) as g:
        people, embs = g.import_json(args.file)
    print(f"imported {people} new people and {embs} embeddings from {args.file}")
    return 0


def cmd_reject(args: argparse.Namespace) -> int:
    with _open(args) as g:
        found = g.reject(args.ref, args.name)
    how = "and faces like it" if found else "(its embedding is unknown, so only that track/event is blocked)"
    print(f"noted: {args.ref} is not {args.name} {how}")
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    from facestream.pipeline.forgetting import forget_everywhere

    out_dir = getattr(args, "out_dir", None)
    with _open(args) as g:
        report = forget_everywhere(g, args.name, out_dir)
    print(f"forgot {args.name}: embeddings, sightings and {len(report.crops)} crop file(s) deleted")
    if report.out_dir is not None:
        print(f"redacted {args.name} from {report.lines} line(s) in {report.files} file(s) under {out_dir}")
        print(f"deleted {report.events} event(s) and {report.event_files} event frame(s) of {args.name} "
              "from the events store")
    else:
        print(f"no output folder at {out_dir}: nothing redacted (pass --out-dir or --config)")
    return 0


def cmd_unknowns(args: argparse.Namespace) -> int:
    from facestream.pipeline.recognition.unknowns import list_unknowns

    with _open(args) as g:
        rows = list_unknowns(g)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{len(rows)} unknown face(s)")
    for r in rows:
        print(
            f"  {r['label']}: seen {r['seen']} time(s), {r['seen_today']} today, "
            f"first {_when(r['first_ns'])}, last {_when(r['last_ns'])}"
        )
    return 0


def cmd_name_unknown(args: argparse.Namespace) -> int:
    from facestream.pipeline.recognition.unknowns import parse_unknown_id, promote

    uid = parse_unknown_id(args.id)
    with _open(args) as g:
        n = promote(g, uid, args.name)
    print(f"unknown#{uid} is now {args.name} ({n} embedding(s) added)")
    return 0
