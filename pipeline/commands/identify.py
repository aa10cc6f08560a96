"""``facestream identify PHOTO|FOLDER|GLOB ...``: who is in these pictures, one row per face.

The still-image counterpart of ``face_recognition known_people/ unknown_pictures/``, with more per face:
its box, quality and the top candidates. ``--enrol-from known/`` builds the gallery from one folder per
person first (the same quality gate as ``gallery add``). CSV on stdout by default, ``--json`` for one JSON
object per line; progress and problems go to stderr. An unreadable file is reported in one line, skipped
and counted; the exit status is 1 when any file was skipped, 2 on a usage error, else 0.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import sys
import tempfile
import time
from pathlib import Path

from facestream.engines.faces.detector_specs import DETECTOR_TYPES
from facestream.errors import FacestreamError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("identify", help="name the faces in photos, folders or globs (one row per face)")
    p.add_argument("inputs", nargs="+", metavar="PHOTO|FOLDER|GLOB")
    p.add_argument("--gallery", type=Path, default=None,
                   help="gallery file (default: $FACESTREAM_GALLERY or ~/.local/share/facestream/gallery.db)")
    p.add_argument("--enrol-from", type=Path, default=None, metavar="KNOWN_DIR",
                   help="first enrol one folder per person (KNOWN_DIR/NAME/*.jpg); without --gallery the "
                        "gallery is temporary")
    p.add_argument("--tolerance", type=float, default=None,
                   help="largest distance between unit embeddings that is a match, as face_recognition's "
                        "tolerance (default 0.40 = cosine 0.92, facestream's calibrated threshold)")
    p.add_argument("--top-k", type=int, default=3, help="candidates listed per face with --json (default 3)")
    p.add_argument("--detector", choices=DETECTOR_TYPES, default=None,
                   help="face detector (default: inference.detector of --config, else hog)")
    p.add_argument("--store", type=Path, default=None,
                   help="model store (default: inference.models_dir of --config, else $FACESTREAM_MODELS)")
    p.add_argument("--json", action="store_true", help="one JSON object per face instead of CSV")
    p.add_argument("--progress", choices=["auto", "always", "never"], default="auto",
                   help="progress line on stderr (auto: when stderr is a terminal and there are many files)")
    p.set_defaults(func=cmd_identify)


def expand_inputs(inputs: list[str]) -> tuple[list[Path], list[str]]:
    """Files from files, folders (recursively) and globs, in order, without duplicates; and what matched nothing."""
    from facestream.fsutil import is_image_file

    files: list[Path] = []
    missing: list[str] = []
    for raw in inputs:
        path = Path(raw).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and is_image_file(p))
        elif path.is_file():
            found = [path]
        else:
            found = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
        if not found:
            missing.append(raw)
        files.extend(found)
    seen: set[Path] = set()
    return [p for p in files if not (p.resolve() in seen or seen.add(p.resolve()))], missing


def enrol_folder(gallery, known: Path, enroller, err) -> tuple[int, int]:
    """Enrol KNOWN/NAME/* photos; returns (people enrolled, photos refused). Refusals are one line each."""
    from facestream.fsutil import is_image_file

    if not known.is_dir():
        raise FacestreamError(f"--enrol-from {known}: not a folder (expected one folder per person)")
    people, refused = 0, 0
    for person in sorted(p for p in known.iterdir() if p.is_dir()):
        items = []
        for photo in sorted(p for p in person.iterdir() if p.is_file() and is_image_file(p)):
            try:
                items.append(enroller.enrol_item(photo))
            except FacestreamError as exc:
                refused += 1
                print(f"facestream: skipped {exc}", file=err)
        if items:
            gallery.enrol(person.name, items)
            people += 1
    if people == 0:
        raise FacestreamError(f"--enrol-from {known}: no person folder with an enrolable photo")
    return people, refused


class Progress:
    def __init__(self, total: int, enabled: bool, err):
        self.total, self.enabled, self.err = total, enabled, err
        self.start = self.last = time.monotonic()

    def update(self, done: int, faces: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.last < 0.5 and done < self.total):
            return
        self.last = now
        rate = done / max(now - self.start, 1e-6)
        end = "\n" if done == self.total else ""
        self.err.write(f"\ridentify: {done}/{self.total} files, {faces} faces, {rate:.1f} files/s{end}")
        self.err.flush()


def _writer(as_json: bool, out):
    if as_json:
        return lambda row: out.write(json.dumps(row) + "\n")
    w = csv.writer(out)
    w.writerow(["file", "x1", "y1", "x2", "y2", "name", "similarity", "quality"])
    return lambda row: w.writerow([row["file"], *row["box"], row["name"] or "unknown",
                                   "" if row["similarity"] is None else row["similarity"], row["quality"]])


def cmd_identify(args: argparse.Namespace, out=None, err=None) -> int:
    from facestream.engines.store import ModelStore

    from ..recognition.enrolment import PhotoEnroller, load_still
    from ..recognition.gallery import Gallery
    from ..recognition.matcher import DEFAULT_THRESHOLD
    from ..recognition.stills import StillAnalyzers, StillIdentifier, tolerance_to_threshold

    out, err = out or sys.stdout, err or sys.stderr
    store = ModelStore(getattr(args, "store", None))
    detector = getattr(args, "detector", None) or "hog"
    if args.tolerance is not None and not 0 < args.tolerance < 2:
        raise FacestreamError(f"--tolerance {args.tolerance}: must be between 0 and 2")
    files, missing = expand_inputs(args.inputs)
    for raw in missing:
        print(f"facestream: skipped {raw}: no such file, folder or matching image", file=err)
    threshold = DEFAULT_THRESHOLD if args.tolerance is None else tolerance_to_threshold(args.tolerance)
    with tempfile.TemporaryDirectory(prefix="facestream-identify-") as tmp:
        gallery_path = args.gallery or (Path(tmp) / "gallery.db" if args.enrol_from else None)
        gallery = Gallery(gallery_path, create=bool(args.enrol_from))
        try:
            if args.enrol_from:
                people, refused = enrol_folder(gallery, args.enrol_from, PhotoEnroller(detector, store), err)
                print(f"facestream: enrolled {people} people from {args.enrol_from}"
                      + (f" ({refused} photos refused)" if refused else ""), file=err)
            snapshot = gallery.snapshot()
        finally:
            gallery.close()
    ident = StillIdentifier(StillAnalyzers(detector, store), snapshot, threshold, args.top_k)
    write = _writer(args.json, out)
    progress = Progress(len(files), args.progress == "always" or (args.progress == "auto" and err.isatty()
                                                                   and len(files) > 20), err)
    skipped, faces = len(missing), 0
    for done, path in enumerate(files, 1):
        try:
            rgb, scale, _ = load_still(path)
        except FacestreamError as exc:
            skipped += 1
            print(f"facestream: skipped {exc}", file=err)
            continue
        for face in ident.identify(rgb, scale):
            faces += 1
            row = {"file": str(path), "box": list(face.box), "name": face.name, "similarity": face.similarity,
                   "quality": face.quality}
            if args.json:
                row["candidates"] = [{"name": c.name, "similarity": c.similarity} for c in face.candidates]
            write(row)
        progress.update(done, faces)
    out.flush()
    print(f"facestream: {len(files) - (skipped - len(missing))} images, {faces} faces"
          + (f", {skipped} skipped" if skipped else ""), file=err)
    return 1 if skipped else 0
